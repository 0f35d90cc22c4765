//! Moving a store: `tessera export` writes everything a store holds, `tessera import` writes it
//! into another (typically from the embedded SQLite default to PostgreSQL), so that every client
//! keeps its credentials and every token signed before the move still verifies after it.
//!
//! The format is JSON Lines, one object per line, each with a `type`:
//!
//! ```text
//! {"type":"header","format":"tessera-export","version":2,"exported_at":1767225600,"schema_version":2,"engine":"sqlite"}
//! {"type":"meta","key":"bootstrap.quickstart","value":"..."}
//! {"type":"client","id":"...","name":"billing","scopes":["invoices:read"],"audiences":[],"token_ttl":3600,
//!  "enabled":true,"created_at":...,"updated_at":...,"can_introspect":false,"tokens_revoked_before":0,"claims":{},
//!  "flows":{"public":false,"grant_types":["client_credentials"],"redirect_uris":[],"first_party":false},
//!  "secrets":[{"id":"...","kind":"sha256","hash":"<hex>","created_at":...,"expires_at":null}]}
//! {"type":"key","kid":"...","alg":"ES256","sealed_private_key":"<base64>","public_jwk":{...},"created_at":...,
//!  "activates_at":...,"retired_at":null}
//! {"type":"user","id":"...","email":"ada@example.com","email_verified":true,"given_name":"Ada","family_name":null,
//!  "name":null,"password_hash":"$argon2id$...","enabled":true,"attributes":{},"created_at":...,"updated_at":...}
//! {"type":"trust_policy","policy":{"id":"...","name":"ci","issuer":"https://token.actions.githubusercontent.com",
//!  "keys":"discovery","audience":"...","subject":"repo:acme/billing:ref:refs/heads/main","client_id":"...",...}}
//! {"type":"revocation","jti":"...","client_id":"...","expires_at":...,"revoked_at":...}
//! {"type":"audit","at":...,"actor":"cli:ops","source":"host","action":"client.create","target":"...","details":{}}
//! {"type":"end","records":123}
//! ```
//!
//! Secrets appear only as the hashes the store keeps; private keys only sealed under the master
//! key, which does not travel in the file: the target nodes need the same master key. The
//! export is read in one snapshot, and the trailing `end` line (with the count) shows the file
//! is whole. An importer refuses a file with another `format`, a newer `version`, an unknown
//! field, or no `end`. Times are seconds since the Unix epoch.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::model::{AuditEntry, ClientRecord, KeyRecord, SecretKind, SecretRecord, UserRecord};
use crate::store::{Record, Store, StoreError};

/// The `format` of the header line.
pub const FORMAT: &str = "tessera-export";
/// The format version this build writes and the newest it reads.
/// Version 2 added per-client `claims` (version 1 files read as clients without claims);
/// version 3 added users and each client's `flows` (type, grant types, redirect URIs);
/// version 4 added trust policies, and clients' authentication method and keys in `flows`.
pub const VERSION: u32 = 4;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header {
        format: String,
        version: u32,
        exported_at: i64,
        schema_version: i64,
        engine: String,
    },
    Meta {
        key: String,
        value: String,
    },
    Client {
        id: String,
        name: String,
        scopes: Vec<String>,
        audiences: Vec<String>,
        token_ttl: u32,
        enabled: bool,
        created_at: i64,
        updated_at: i64,
        can_introspect: bool,
        tokens_revoked_before: i64,
        #[serde(default)]
        claims: crate::claims::Claims,
        #[serde(default)]
        flows: crate::model::flows::Flows,
        secrets: Vec<SecretLine>,
        /// How a self-registered client came to be.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration: Option<crate::model::registration::Registration>,
    },
    User(UserRecord),
    TrustPolicy {
        policy: crate::model::trust::TrustPolicy,
    },
    Key {
        kid: String,
        alg: String,
        sealed_private_key: String,
        public_jwk: serde_json::Value,
        created_at: i64,
        activates_at: i64,
        retired_at: Option<i64>,
        #[serde(default)]
        purpose: crate::model::KeyPurpose,
    },
    Revocation {
        jti: String,
        client_id: String,
        expires_at: i64,
        revoked_at: i64,
    },
    Audit {
        at: i64,
        actor: String,
        source: String,
        action: String,
        target: String,
        details: serde_json::Value,
    },
    End {
        records: u64,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretLine {
    id: String,
    kind: String,
    hash: String,
    created_at: i64,
    expires_at: Option<i64>,
}

fn to_line(r: &Record) -> Line {
    match r.clone() {
        Record::Client(c) => Line::Client {
            id: c.id,
            name: c.name,
            scopes: c.scopes,
            audiences: c.audiences,
            token_ttl: c.token_ttl,
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
            can_introspect: c.can_introspect,
            tokens_revoked_before: c.tokens_revoked_before,
            claims: c.claims,
            flows: c.flows,
            registration: c.registration,
            secrets: c
                .secrets
                .into_iter()
                .map(|s| SecretLine {
                    id: s.id,
                    kind: s.kind.as_str().to_string(),
                    hash: s.hash,
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                })
                .collect(),
        },
        Record::Key(k) => Line::Key {
            kid: k.kid,
            alg: k.alg,
            sealed_private_key: STANDARD.encode(&k.sealed_private_key),
            public_jwk: serde_json::from_str(&k.public_jwk).unwrap_or(serde_json::Value::Null),
            created_at: k.created_at,
            activates_at: k.activates_at,
            retired_at: k.retired_at,
            purpose: k.purpose,
        },
        Record::Revocation {
            jti,
            client_id,
            expires_at,
            revoked_at,
        } => Line::Revocation {
            jti,
            client_id,
            expires_at,
            revoked_at,
        },
        Record::Audit { at, entry } => Line::Audit {
            at,
            actor: entry.actor,
            source: entry.source,
            action: entry.action,
            target: entry.target,
            details: entry.details,
        },
        Record::Meta { key, value } => Line::Meta { key, value },
        Record::User(u) => Line::User(u),
        Record::Trust(p) => Line::TrustPolicy { policy: p },
    }
}

fn from_line(line: Line) -> Result<Option<Record>, String> {
    Ok(Some(match line {
        Line::Client {
            id,
            name,
            scopes,
            audiences,
            token_ttl,
            enabled,
            created_at,
            updated_at,
            can_introspect,
            tokens_revoked_before,
            claims,
            flows,
            secrets,
            registration,
        } => Record::Client(ClientRecord {
            registration,
            flows: {
                crate::model::flows::validate_flows(&flows).map_err(|e| format!("client {id}: {e}"))?;
                flows
            },
            claims: {
                crate::claims::validate(&claims).map_err(|e| format!("client {id}: {e}"))?;
                claims
            },
            scopes: {
                if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(' ')) {
                    return Err(format!("client {id}: {bad:?} is not one scope token"));
                }
                scopes
            },
            token_ttl: if token_ttl == 0 || token_ttl > crate::model::MAX_TOKEN_TTL {
                return Err(format!("client {id}: token_ttl {token_ttl} is out of range"));
            } else {
                token_ttl
            },
            id,
            name,
            audiences,
            enabled,
            created_at,
            updated_at,
            can_introspect,
            tokens_revoked_before,
            secrets: secrets
                .into_iter()
                .map(|s| {
                    Ok(SecretRecord {
                        id: s.id,
                        kind: SecretKind::parse(&s.kind)?,
                        hash: s.hash,
                        created_at: s.created_at,
                        expires_at: s.expires_at,
                    })
                })
                .collect::<Result<_, String>>()?,
        }),
        Line::Key {
            kid,
            alg,
            sealed_private_key,
            public_jwk,
            created_at,
            activates_at,
            retired_at,
            purpose,
        } => {
            if !public_jwk.is_object() {
                return Err(format!("key {kid}: public_jwk is not a JSON object"));
            }
            if alg.parse::<crate::keys::Alg>().is_err() {
                return Err(format!("key {kid}: unknown algorithm {alg:?}"));
            }
            Record::Key(KeyRecord {
                sealed_private_key: STANDARD
                    .decode(&sealed_private_key)
                    .map_err(|_| format!("key {kid}: sealed_private_key is not base64"))?,
                kid,
                alg,
                public_jwk: public_jwk.to_string(),
                created_at,
                activates_at,
                retired_at,
                purpose,
            })
        }
        Line::Revocation {
            jti,
            client_id,
            expires_at,
            revoked_at,
        } => Record::Revocation {
            jti,
            client_id,
            expires_at,
            revoked_at,
        },
        Line::Audit {
            at,
            actor,
            source,
            action,
            target,
            details,
        } => Record::Audit {
            at,
            entry: AuditEntry {
                actor,
                source,
                action,
                target,
                details,
            },
        },
        Line::Meta { key, value } => Record::Meta { key, value },
        Line::User(u) => {
            crate::claims::validate_attributes(&u.attributes).map_err(|e| format!("user {}: {e}", u.id))?;
            if u.email.trim().is_empty() {
                return Err(format!("user {}: no email", u.id));
            }
            Record::User(u)
        }
        Line::TrustPolicy { policy } => {
            crate::model::trust::validate(&policy).map_err(|e| format!("trust policy {}: {e}", policy.id))?;
            Record::Trust(policy)
        }
        Line::Header { .. } => return Err("a second header line".into()),
        Line::End { .. } => return Ok(None),
    }))
}

/// Writes an export of `store` to `out`; returns how many records it holds.
pub async fn export(store: &Store, out: &mut impl std::io::Write) -> Result<u64, anyhow::Error> {
    let header = Line::Header {
        format: FORMAT.into(),
        version: VERSION,
        exported_at: crate::model::clock::unix_now(),
        schema_version: store.schema_version().await?,
        engine: store.engine_name().into(),
    };
    writeln!(out, "{}", serde_json::to_string(&header)?)?;
    let mut write_error: Option<std::io::Error> = None;
    let count = store
        .export(|record| {
            if write_error.is_none() {
                let written = serde_json::to_string(&to_line(&record))
                    .map_err(std::io::Error::other)
                    .and_then(|line| writeln!(out, "{line}"));
                write_error = written.err();
            }
        })
        .await?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    writeln!(out, "{}", serde_json::to_string(&Line::End { records: count })?)?;
    out.flush()?;
    Ok(count)
}

/// Reads an export, checking its header, every line and its end. Errors name the line.
pub fn read(input: impl std::io::BufRead) -> Result<Vec<Record>, StoreError> {
    let bad = |n: usize, why: String| StoreError::Unsupported(format!("import: line {n}: {why}"));
    let mut records = Vec::new();
    let mut lines = input.lines().enumerate();
    let Some((_, first)) = lines.next() else {
        return Err(StoreError::Unsupported("import: the file is empty".into()));
    };
    let first = first.map_err(|e| bad(1, e.to_string()))?;
    match serde_json::from_str::<Line>(&first) {
        Ok(Line::Header { format, version, .. }) if format == FORMAT => {
            if version > VERSION {
                return Err(bad(
                    1,
                    format!("format version {version} is newer than this Tessera reads ({VERSION})"),
                ));
            }
        }
        _ => return Err(bad(1, format!("not a {FORMAT} file (no header line)"))),
    }
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        let line = line.map_err(|e| bad(n, e.to_string()))?;
        let parsed: Line = crate::json::from_str(&line).map_err(|e| bad(n, e))?;
        if let Line::End { records: expected } = parsed {
            if expected != records.len() as u64 {
                return Err(bad(
                    n,
                    format!("the file says {expected} records, it holds {}", records.len()),
                ));
            }
            // Nothing may follow the end: two exports run together are not one store.
            for (i, rest) in lines.by_ref() {
                if !rest.map_err(|e| bad(i + 1, e.to_string()))?.trim().is_empty() {
                    return Err(bad(i + 1, "content after the end line".into()));
                }
            }
            return Ok(records);
        }
        if let Some(r) = from_line(parsed).map_err(|e| bad(n, e))? {
            records.push(r);
        }
    }
    Err(StoreError::Unsupported(
        "import: the file has no end line: it was cut short".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::read;
    use crate::store::Record;

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let header = r#"{"type":"header","format":"tessera-export","version":2,"exported_at":1,"schema_version":2,"engine":"sqlite"}"#;
        let meta = r#"{"type":"meta","key":"k","value":"v"}"#;
        let whole = format!("{header}\n{meta}\n{{\"type\":\"end\",\"records\":1}}\n");
        let records = read(whole.as_bytes()).unwrap_or_default();
        assert_eq!(
            records,
            vec![Record::Meta {
                key: "k".into(),
                value: "v".into()
            }]
        );
        let cut = format!("{header}\n{meta}\n");
        assert!(read(cut.as_bytes()).is_err_and(|e| e.to_string().contains("cut short")));
        let trailing = format!("{whole}{header}\n");
        assert!(read(trailing.as_bytes()).is_err_and(|e| e.to_string().contains("after the end")));
        let miscounted = format!("{header}\n{meta}\n{{\"type\":\"end\",\"records\":2}}\n");
        assert!(read(miscounted.as_bytes()).is_err_and(|e| e.to_string().contains("says 2 records")));
        assert!(read(format!("{meta}\n").as_bytes()).is_err_and(|e| e.to_string().contains("no header")));
        let newer = header.replace("\"version\":2", "\"version\":9");
        let older = whole.replace("\"version\":2", "\"version\":1");
        assert_eq!(
            read(older.as_bytes()).map(|r| r.len()).ok(),
            Some(1),
            "version 1 still reads"
        );
        assert!(read(format!("{newer}\n").as_bytes()).is_err_and(|e| e.to_string().contains("newer")));
        let unknown = format!("{header}\n{{\"type\":\"meta\",\"key\":\"k\",\"value\":\"v\",\"x\":1}}\n");
        assert!(read(unknown.as_bytes()).is_err_and(|e| e.to_string().contains("line 2")));
    }
}
