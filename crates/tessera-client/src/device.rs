//! Signing a person in on another screen (RFC 8628 device authorization), for command-line
//! tools and devices without a browser: [`DeviceFlow::start`] gets the codes to show,
//! [`DeviceFlow::poll`] waits (at the pace the server sets, slowing down when told) until the
//! person has allowed or denied it on their phone or computer.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera_client::ClientError> {
//! use tessera_client::DeviceFlow;
//! let flow = DeviceFlow::discover("https://auth.example.com", "my-cli").await?;
//! let started = flow.start(Some("openid offline_access deploy")).await?;
//! eprintln!("Open {} and enter {}", started.verification_uri, started.user_code);
//! let tokens = flow.poll(&started).await?;
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{ClientError, chain, discover, parse};

/// The grant type a device polls with.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What RFC 8628 §3.5 adds to the interval on `slow_down`.
const SLOW_DOWN: Duration = Duration::from_secs(5);

/// A client signing a person in with the device flow: a public client (the usual case for a
/// CLI), or a confidential one with [`with_secret`](Self::with_secret).
#[derive(Clone)]
pub struct DeviceFlow {
    http: reqwest::Client,
    client_id: String,
    secret: Option<String>,
    device_endpoint: String,
    token_endpoint: String,
}

/// The codes a device shows while the person answers (RFC 8628 §3.2). Its `Debug` leaves out
/// the device code.
#[derive(Clone, Deserialize)]
pub struct DeviceAuthorization {
    device_code: String,
    /// The code the person enters.
    pub user_code: String,
    /// Where the person enters it.
    pub verification_uri: String,
    /// The same with the code filled in (for a link or a QR code), if the server gives one.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes work.
    pub expires_in: u64,
    /// Seconds to wait between polls (5 when the server says nothing).
    #[serde(default = "default_interval")]
    pub interval: u64,
    #[serde(skip, default = "Instant::now")]
    started: Instant,
}

fn default_interval() -> u64 {
    5
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DeviceFlow {
    /// The flow for `client_id` at `issuer`, whose device authorization and token endpoints
    /// are read from its metadata (RFC 8414).
    pub async fn discover(issuer: &str, client_id: impl Into<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Config(chain(&e)))?;
        let meta = discover(&http, issuer.trim_end_matches('/')).await?;
        let device_endpoint = meta.device_authorization_endpoint.ok_or_else(|| {
            ClientError::Config("the server does not offer device authorization (RFC 8628)".into())
        })?;
        Ok(DeviceFlow {
            http,
            client_id: client_id.into(),
            secret: None,
            device_endpoint,
            token_endpoint: meta.token_endpoint,
        })
    }

    /// Authenticates as a confidential client (HTTP Basic with `secret`).
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }

    fn post(&self, url: &str, mut form: Vec<(&'static str, String)>) -> reqwest::RequestBuilder {
        match &self.secret {
            Some(secret) => self.http.post(url).form(&form).basic_auth(
                tessera_proto::form_urlencode(&self.client_id),
                Some(tessera_proto::form_urlencode(secret)),
            ),
            None => {
                form.push(("client_id", self.client_id.clone()));
                self.http.post(url).form(&form)
            }
        }
    }

    /// Asks for a device code and a user code for `scope` (space-separated; `None`: the
    /// client's own).
    pub async fn start(&self, scope: Option<&str>) -> Result<DeviceAuthorization, ClientError> {
        let mut form = Vec::new();
        if let Some(s) = scope {
            form.push(("scope", s.to_string()));
        }
        let r = self
            .post(&self.device_endpoint, form)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(chain(&e)))?;
        if !r.status().is_success() {
            return Err(refused(r).await);
        }
        let mut started: DeviceAuthorization = r
            .json()
            .await
            .map_err(|e| ClientError::InvalidResponse(chain(&e)))?;
        started.started = Instant::now();
        Ok(started)
    }

    /// Polls until the person answers: the tokens, or `access_denied`, `expired_token` (also
    /// when `expires_in` passes) or another refusal as [`ClientError::Refused`]. Waits the
    /// interval between polls, 5 s more after each `slow_down`, and twice as long (or what
    /// `Retry-After` says) after each failure to reach the server, a 5xx or a 429 (§3.5).
    pub async fn poll(
        &self,
        started: &DeviceAuthorization,
    ) -> Result<tessera_proto::TokenResponse, ClientError> {
        let deadline = started.started + Duration::from_secs(started.expires_in);
        let mut interval = Duration::from_secs(started.interval.max(1));
        let mut wait = interval;
        loop {
            tokio::time::sleep(wait).await;
            if Instant::now() >= deadline {
                return Err(ClientError::Refused {
                    status: 400,
                    error: "expired_token".into(),
                    description: "the codes expired before the person answered".into(),
                });
            }
            let form = vec![
                ("grant_type", DEVICE_CODE.to_string()),
                ("device_code", started.device_code.clone()),
            ];
            match self.post(&self.token_endpoint, form).send().await {
                Ok(r) if r.status().is_success() => return parse(r, false).await,
                // The server is busy or limiting this address: back off, then poll again.
                Ok(r)
                    if r.status().is_server_error()
                        || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS =>
                {
                    wait = (wait * 2)
                        .max(crate::retry_after(r.headers()).unwrap_or_default())
                        .min(Duration::from_secs(60))
                }
                Ok(r) => match refused(r).await {
                    ClientError::Refused { error, .. } if error == "authorization_pending" => wait = interval,
                    ClientError::Refused { error, .. } if error == "slow_down" => {
                        interval += SLOW_DOWN;
                        wait = interval;
                    }
                    other => return Err(other),
                },
                Err(_) => wait = (wait * 2).min(Duration::from_secs(60)),
            }
        }
    }
}

/// The OAuth error of a refused request.
async fn refused(r: reqwest::Response) -> ClientError {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    ClientError::refused(status, &body)
}
