// An MCP client built with the official TypeScript SDK (@modelcontextprotocol/sdk) connects to an
// MCP server that Tessera protects, knowing nothing but the server's URL: the SDK reads the
// server's 401, its RFC 9728 metadata, Tessera's RFC 8414 metadata, registers (RFC 7591) or
// names its client metadata document (CLIENT_METADATA_URL), and sends a person to sign in with
// PKCE and a resource indicator. A real browser (browser.mjs) plays the person on Tessera's login
// and consent pages. Then the client lists and calls tools, its access token is spoiled, and the
// next call makes the SDK refresh it.
//
// Env: MCP_URL REDIRECT_URI EMAIL PASSWORD [CLIENT_METADATA_URL] [CHROMIUM]
// Output: one JSON line {"client_id", "consent_text", "tools", "whoami", "sum",
// "refreshed", "resource", "scope", "code_challenge_method", "claims"} (claims: the final access
// token's payload, never the token); on failure {"error": ...}, the reason on stderr, exit 1.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { runScript, signIn } from './browser.mjs';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

// What an MCP host keeps for one server: its client registration, tokens and PKCE verifier.
class Provider {
  constructor(redirectUri, metadataUrl) {
    this.redirect = redirectUri;
    if (metadataUrl) this.clientMetadataUrl = metadataUrl;
    this.authorizationUrl = undefined;
  }
  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return {
      client_name: 'Tessera MCP test client',
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return crypto.randomUUID();
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.stored;
  }
  saveTokens(tokens) {
    this.stored = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

const text = (result) => result.content.map((c) => c.text).join('');

async function connect(url, provider) {
  const client = new Client({ name: 'tessera-mcp-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  return client;
}

async function main() {
  const url = new URL(env('MCP_URL'));
  const redirectUri = env('REDIRECT_URI');
  const provider = new Provider(redirectUri, process.env.CLIENT_METADATA_URL);

  // First contact: no token, so the SDK discovers, registers and asks for a sign-in.
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  const first = new Client({ name: 'tessera-mcp-test', version: '1.0.0' });
  try {
    await first.connect(transport);
    throw new Error('the MCP server let an unauthenticated client in');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (!provider.authorizationUrl) throw new Error('the SDK did not ask for a sign-in');
  const asked = provider.authorizationUrl;
  const { callback, consent_text } = await signIn({
    authorizeUrl: asked.href,
    redirectUri,
    email: env('EMAIL'),
    password: env('PASSWORD'),
  });
  const back = new URL(callback);
  if (back.searchParams.get('state') !== asked.searchParams.get('state')) throw new Error('state differs');
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code in ${callback}`);
  await transport.finishAuth(code);

  // Signed in: a new connection with the token.
  const client = await connect(url, provider);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = text(await client.callTool({ name: 'whoami', arguments: {} }));
  const firstToken = provider.stored.access_token;
  if (!provider.stored.refresh_token) throw new Error('no refresh token was issued');

  // The access token goes bad: the next call gets a 401 and the SDK refreshes, then retries.
  provider.saveTokens({ ...provider.stored, access_token: 'spoiled' });
  const sum = text(await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } }));
  const refreshed = provider.stored.access_token !== 'spoiled' && provider.stored.access_token !== firstToken;
  await client.close();
  return {
    client_id: provider.client.client_id,
    consent_text,
    tools,
    whoami,
    sum,
    refreshed,
    resource: asked.searchParams.get('resource'),
    scope: asked.searchParams.get('scope'),
    code_challenge_method: asked.searchParams.get('code_challenge_method'),
    // What the token says (the token itself stays here).
    claims: JSON.parse(Buffer.from(provider.stored.access_token.split('.')[1], 'base64url').toString()),
  };
}

await runScript(main, 120_000);
