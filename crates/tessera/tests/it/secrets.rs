//! Secrets and keys at rest: only hashes and sealed keys in the store; state survives a restart.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use tessera::admin::NewClient;
use tessera::keys::MasterKey;
use tessera::model::SecretKind;

use crate::kit::{self, Opts};

fn store_bytes(dir: &std::path::Path) -> Vec<u8> {
    if kit::pg::integration() {
        let all = kit::pg::dump(&kit::db_url(dir));
        assert!(!all.is_empty());
        return all;
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tessera.db")
        {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!all.is_empty());
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn secrets_are_stored_hashed_and_generated_ones_carry_256_bits() {
    let s = kit::start(Opts::default()).await;
    let (gen_id, generated) = s.client("a", &[]).await;
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&generated).unwrap().len(),
        32,
        "256 bits of randomness"
    );
    let (_, other) = s.client("a", &[]).await;
    assert_ne!(generated, other);
    let imported = "imported-Secret-value-42";
    let (imp_id, _) = s
        .client_with(NewClient {
            name: "imp".into(),
            scope: "a".into(),
            secret: Some(imported.into()),
            ..Default::default()
        })
        .await;

    let g = s.app().store.client(&gen_id).await.unwrap().unwrap();
    assert_eq!(g.secrets[0].kind, SecretKind::Sha256);
    assert_ne!(g.secrets[0].hash, generated);
    let i = s.app().store.client(&imp_id).await.unwrap().unwrap();
    assert_eq!(i.secrets[0].kind, SecretKind::Argon2id);
    assert!(
        i.secrets[0].hash.starts_with("$argon2id$"),
        "{}",
        i.secrets[0].hash
    );

    // Neither secret appears anywhere in the database files.
    let bytes = store_bytes(s.dir.path());
    assert!(!contains(&bytes, generated.as_bytes()));
    assert!(!contains(&bytes, imported.as_bytes()));
    // Both authenticate, the imported one repeatedly (the verified-cache path).
    for _ in 0..3 {
        let r = s
            .token_basic(&imp_id, imported, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = s
        .token_basic(&gen_id, &generated, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn signing_keys_are_sealed_with_the_master_key_and_survive_restart() {
    let s = kit::start(Opts::default()).await;
    let (id, secret) = s.client("a", &[]).await;
    let body: Value = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let before = body["access_token"].as_str().unwrap().to_string();
    let keys = s
        .app()
        .store
        .live_keys(tessera::model::clock::unix_now())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];

    let master_file = s.dir.path().join("master.key");
    let text = std::fs::read_to_string(&master_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "master key readable by others");
        // The store's files hold secret hashes and the audit trail: owner only, too.
        if !kit::pg::integration() {
            for name in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
                let file = s.dir.path().join(name);
                let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{name} readable by others");
            }
        }
    }
    let master = MasterKey::from_bytes(&STANDARD.decode(text.trim()).unwrap()).unwrap();
    let pkcs8 = master.open(&key.kid, &key.sealed_private_key).unwrap();
    assert!(
        !contains(&store_bytes(s.dir.path()), &pkcs8),
        "private key stored in clear"
    );
    let wrong = MasterKey::from_bytes(&[0u8; 32]).unwrap();
    assert!(wrong.open(&key.kid, &key.sealed_private_key).is_err());

    // After a restart: same key, the old token still verifies, new tokens work.
    let s = s.restart().await;
    assert_eq!(
        s.app()
            .store
            .live_keys(tessera::model::clock::unix_now())
            .await
            .unwrap()[0]
            .kid,
        key.kid
    );
    let jwks = s.url("/.well-known/jwks.json");
    let iss = kit::decode_unverified(&before).1["iss"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        kit::verify_as_resource_server(&s.http, &jwks, &before, &iss, &iss)
            .await
            .is_ok()
    );
    let r = s
        .token_basic(&id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 200);
}
