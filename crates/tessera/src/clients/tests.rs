use super::*;

fn record(secret: &str, kind: SecretKind, enabled: bool) -> ClientRecord {
    ClientRecord {
        id: "c1".into(),
        name: "n".into(),
        scopes: vec!["a".into()],
        audiences: vec![],
        token_ttl: 60,
        enabled,
        created_at: 0,
        updated_at: 0,
        can_introspect: false,
        tokens_revoked_before: 0,
        claims: Default::default(),
        flows: Default::default(),
        secrets: vec![new_secret_record(secret, kind).unwrap()],
        registration: None,
    }
}

#[test]
fn entries_are_shared_while_unchanged_and_rebuilt_on_any_change() {
    let reg = Registry::new();
    let mut a = record(&generate_secret().unwrap(), SecretKind::Sha256, true);
    let mut b = a.clone();
    b.id = "c2".into();
    b.secrets = vec![new_secret_record("other", SecretKind::Sha256).unwrap()];
    reg.replace_all(vec![a.clone(), b.clone()]);
    let (ca, cb) = (reg.get("c1").unwrap(), reg.get("c2").unwrap());
    assert!(Arc::ptr_eq(&ca.grants, &cb.grants), "same scopes, one copy");
    assert_eq!(&*ca.grants.all_scopes, "a");

    // A refresh with the same records keeps the entries.
    reg.replace_all(vec![a.clone(), b.clone()]);
    assert!(Arc::ptr_eq(&ca, &reg.get("c1").unwrap()));

    // Any change the cache keeps makes a new entry, even with the same updated_at.
    let fresh = |reg: &Registry, r: &ClientRecord| {
        reg.replace_all(vec![r.clone()]);
        let now = reg.get(&r.id).unwrap();
        let changed = !Arc::ptr_eq(&ca, &now);
        reg.replace_all(vec![a.clone()]);
        changed
    };
    let mut c = a.clone();
    c.enabled = false;
    assert!(fresh(&reg, &c));
    let mut c = a.clone();
    c.secrets = vec![new_secret_record("rotated", SecretKind::Sha256).unwrap()];
    assert!(fresh(&reg, &c));
    let mut c = a.clone();
    c.secrets[0].expires_at = Some(1);
    assert!(fresh(&reg, &c));
    let mut c = a.clone();
    c.scopes.push("b".into());
    assert!(fresh(&reg, &c));
    let mut c = a.clone();
    c.audiences.push("https://api".into());
    assert!(fresh(&reg, &c));
    let mut c = a.clone();
    c.tokens_revoked_before = 5;
    assert!(fresh(&reg, &c));

    // upsert replaces one entry and removes with None; new scopes get their own grants.
    a.scopes = vec!["z".into()];
    reg.upsert("c1", Some(a.clone()));
    assert_eq!(&*reg.get("c1").unwrap().grants.all_scopes, "z");
    assert_eq!(reg.len(), 1);
    reg.upsert("c1", None);
    assert!(reg.get("c1").is_none());
    assert!(reg.is_empty());
}

#[tokio::test]
async fn generated_and_imported_secrets_verify() {
    let secret = generate_secret().unwrap();
    assert_eq!(secret.len(), 43);
    assert!((0..200).all(|_| !generate_secret().unwrap().starts_with('-')));
    let reg = Registry::new();
    reg.replace_all(vec![record(&secret, SecretKind::Sha256, true)]);
    assert!(reg.authenticate("c1", &secret).await.is_ok());
    assert_eq!(
        reg.authenticate("c1", "nope").await.err(),
        Some(AuthFailure::BadSecret)
    );
    assert_eq!(
        reg.authenticate("c2", &secret).await.err(),
        Some(AuthFailure::UnknownClient)
    );

    reg.replace_all(vec![record("hunter2", SecretKind::Argon2id, true)]);
    assert!(reg.authenticate("c1", "hunter2").await.is_ok());
    assert!(reg.authenticate("c1", "hunter2").await.is_ok(), "cached path");
    assert_eq!(
        reg.authenticate("c1", "hunter3").await.err(),
        Some(AuthFailure::BadSecret)
    );

    reg.replace_all(vec![record("hunter2", SecretKind::Argon2id, false)]);
    assert_eq!(
        reg.authenticate("c1", "hunter2").await.err(),
        Some(AuthFailure::Disabled)
    );
}
