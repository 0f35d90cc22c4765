use super::*;

#[test]
fn the_vendor_example_config_serves_four_paths() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/vendors.toml"
    ));
    let settings = Settings::load(Some(path), &Overrides::default()).map_err(|e| e.0);
    let paths: Vec<(String, PathRules)> = settings.map(|s| s.token_paths).unwrap_or_default();
    let names: Vec<&str> = paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "/connect/token",
            "/configapi/v2/oauth/token",
            "/api/id/v1/auth/token",
            "/ids/auth/login"
        ]
    );
    assert!(paths[0].1.multipart && paths[1].1.scope_selects_audience && !paths[2].1.post);
    // The same four as the one-line preset.
    let over = Overrides {
        token_endpoint_presets: Some(("all".into(), "test".into())),
        ..Default::default()
    };
    let all = Settings::load(None, &over)
        .map(|s| s.token_paths)
        .unwrap_or_default();
    assert_eq!(all, paths);
    // A preset path given twice is refused.
    let over = Overrides {
        token_endpoint_presets: Some(("instructure,instructure".into(), "test".into())),
        ..Default::default()
    };
    assert!(Settings::load(None, &over).is_err());
}

#[test]
fn issuer_rules() {
    assert_eq!(
        validate_issuer("https://auth.example/").as_deref(),
        Ok("https://auth.example")
    );
    assert!(validate_issuer("auth.example").is_err());
    assert!(validate_issuer("https://a/?x=1").is_err());
    assert!(validate_issuer("https://a/#f").is_err());
    assert!(
        validate_issuer("http://auth.example").is_err(),
        "http off loopback"
    );
    assert!(validate_issuer("http://127.0.0.1:8080").is_ok());
    assert!(validate_issuer("http://localhost:8080/").is_ok());
    assert!(validate_issuer("https://a/{*x}").is_err());
    assert!(validate_issuer("https://a/tenant-1/").is_ok());
}

#[test]
fn database_urls() {
    assert!(matches!(
        DatabaseUrl::parse("sqlite:./x.db"),
        Ok(DatabaseUrl::Sqlite { .. })
    ));
    assert!(matches!(
        DatabaseUrl::parse("sqlite:///tmp/x.db"),
        Ok(DatabaseUrl::Sqlite { .. })
    ));
    assert!(DatabaseUrl::parse("mysql://x").is_err());
    assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    let pg = DatabaseUrl::parse("postgres://u:hunter2@h/db").map(|d| format!("{d:?}"));
    assert_eq!(pg.as_deref(), Ok("postgres://<redacted>"));
}

#[test]
fn aliases() {
    assert_eq!(parse_aliases("/connect/token, /x").map(|v| v.len()), Ok(2));
    assert!(parse_aliases("connect/token").is_err());
    assert!(parse_aliases("/oauth2/token").is_err());
}

#[test]
fn outbound_fetches_are_public_and_https_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(Some(&path), &Overrides::default()).map_err(|e| e.0)
    };
    let default = load("").unwrap().outbound;
    assert!(default.allow_networks.is_empty() && !default.allow_http_loopback);
    let set = load("[outbound]\nallow_networks = [\"10.20.0.0/16\", \"192.0.2.7\"]\nallow_http_loopback = true\ntimeout = 3\n")
        .unwrap()
        .outbound;
    assert_eq!(set.allow_networks.len(), 2);
    assert!(set.allow_http_loopback);
    assert_eq!(set.timeout, std::time::Duration::from_secs(3));
    assert!(
        load("[outbound]\nallow_networks = [\"nonsense\"]\n")
            .unwrap_err()
            .contains("allow_networks")
    );
    assert!(load("[outbound]\ntimeout = 0\n").is_err());
    assert!(load("[outbound]\nproxy = \"x\"\n").is_err());
    assert!(load("max_assertion_lifetime = 10\n").is_err());
    assert!(load("").unwrap().assertion_audience_token_endpoint);
    assert!(
        !load("assertion_audience = \"issuer\"\n")
            .unwrap()
            .assertion_audience_token_endpoint
    );
    assert!(load("assertion_audience = \"anything\"\n").is_err());
    assert_eq!(
        load("max_assertion_lifetime = 300\n")
            .unwrap()
            .max_assertion_lifetime,
        std::time::Duration::from_secs(300)
    );
}

#[test]
fn dpop_settings_have_defaults_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(Some(&path), &Overrides::default()).map_err(|e| e.0)
    };
    let default = load("").unwrap().dpop;
    assert_eq!(default, DpopSettings::default());
    assert!(!default.require_nonce);
    assert_eq!((default.nonce_lifetime, default.window.max_age), (300, 120));
    let set = load("[dpop]\nrequire_nonce = true\nnonce_lifetime = 60\nproof_max_age = 30\n")
        .unwrap()
        .dpop;
    assert!(set.require_nonce);
    assert_eq!((set.nonce_lifetime, set.window.max_age), (60, 30));
    assert!(
        load("[dpop]\nnonce_lifetime = 5\n")
            .unwrap_err()
            .contains("nonce_lifetime")
    );
    assert!(
        load("[dpop]\nproof_max_age = 3600\n")
            .unwrap_err()
            .contains("proof_max_age")
    );
    assert!(
        load("[dpop]\nnonces = true\n").is_err(),
        "unknown keys are refused"
    );
}
