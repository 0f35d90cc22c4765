//! The store conformance suite: one set of checks, run against every engine. SQLite always;
//! PostgreSQL when `TESSERA_TEST_POSTGRES_URL` is set (CI always sets it, and fails without it).

use std::sync::Arc;

use tessera::model::clock::unix_now as now;
use tessera::model::{
    AuditEntry, ClientRecord, CodeRecord, Grant, Issued, KeyRecord, Redemption, Refresh, RefreshRecord,
    SecretKind, SecretRecord, SessionRecord, UserRecord,
};
use tessera::store::DatabaseUrl;
use tessera::store::{Store, StoreError};

use crate::kit::pg;

/// A fresh, empty store of the engine, migrated. Keeps its directory alive with it.
struct Fresh {
    store: Store,
    _dir: tempfile::TempDir,
}

async fn fresh(engine: &str) -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let url = match engine {
        "sqlite" => format!("sqlite:{}/t.db", dir.path().display()),
        _ => {
            pg::require("store conformance suite (postgres)")?;
            pg::fresh_database()
        }
    };
    let store = Store::open(&DatabaseUrl::parse(&url).unwrap(), true)
        .await
        .unwrap();
    assert_eq!(store.engine_name(), engine);
    Some(Fresh { store, _dir: dir })
}

fn audit(action: &str, target: &str) -> AuditEntry {
    AuditEntry {
        actor: "test".into(),
        source: "suite".into(),
        action: action.into(),
        target: target.into(),
        details: serde_json::json!({"n": 1}),
    }
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        id: id.into(),
        name: format!("client {id}"),
        scopes: vec!["a:read".into(), "b:write".into()],
        audiences: vec!["https://api.example".into()],
        token_ttl: 600,
        enabled: true,
        created_at: now(),
        updated_at: now(),
        can_introspect: false,
        tokens_revoked_before: 0,
        claims: serde_json::json!({"tenant": id, "tier": 2})
            .as_object()
            .cloned()
            .unwrap(),
        flows: tessera::model::flows::Flows {
            public: false,
            grant_types: vec!["client_credentials".into(), "authorization_code".into()],
            redirect_uris: vec!["https://app.example/cb".into(), "http://127.0.0.1/native".into()],
            first_party: true,
            ..Default::default()
        },
        secrets: vec![SecretRecord {
            id: format!("{id}-s1"),
            kind: SecretKind::Sha256,
            hash: "00".repeat(32),
            created_at: now(),
            expires_at: None,
        }],
        registration: None,
    }
}

fn user(id: &str, email: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        email: email.into(),
        email_verified: true,
        given_name: Some("Ada".into()),
        family_name: None,
        name: Some("Ada Lovelace".into()),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        enabled: true,
        attributes: serde_json::json!({"department": "analytics", "level": 3})
            .as_object()
            .cloned()
            .unwrap(),
        created_at: now(),
        updated_at: now(),
        roles: vec!["auditor".into()],
    }
}

fn key(kid: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        sealed_private_key: vec![1, 2, 3, 0, 255],
        public_jwk: format!(r#"{{"kid":"{kid}","kty":"EC"}}"#),
        created_at,
        activates_at: created_at,
        retired_at: None,
        purpose: tessera::model::KeyPurpose::Access,
    }
}

/// Generates one `#[tokio::test]` per engine for each check.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(f) = super::fresh("sqlite").await {
                        super::$check(&f.store).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(f) = super::fresh("postgres").await {
                        super::$check(&f.store).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    clients_round_trip,
    modify_is_atomic_under_concurrent_writers,
    once_only_bootstrap_and_first_key_under_races,
    scheduled_rotation_happens_once,
    raise_meta_keeps_the_largest,
    revocations,
    change_feed_is_ordered_and_detects_gaps,
    export_then_import_is_identical,
    import_refuses_a_store_in_use,
    users_round_trip_with_unique_emails,
    sealing_again_and_rotating_refuse_a_moved_target,
    sign_in_state_is_single_use_under_races,
    assertions_are_used_once_under_races,
    trust_policies_round_trip,
    registrations_are_capped_gated_and_pruned,
    device_requests_are_answered_once_and_paced,
    console_lists_page_by_index_ranges,
);

/// What the console's lists read: clients by the start of their name (ASCII case aside) or id,
/// users by the start of their email, the audit trail newest first with exact filters and a
/// time range; each paged by a key, the same on both engines.
async fn console_lists_page_by_index_ranges(store: &Store) {
    use tessera::model::AuditFilter;
    for (id, name) in [
        ("c-a1", "Alpha"),
        ("c-a2", "alpine"),
        ("c-b", "Beta"),
        ("d-1", "ALPS"),
        ("s-1", "Same"),
        ("s-2", "same"),
    ] {
        let mut c = client(id);
        c.name = name.into();
        store
            .insert_client(&c, None, &audit("client.create", id))
            .await
            .unwrap();
    }
    let names = |v: Vec<ClientRecord>| v.into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.clients_by_name("al", None, 10).await.unwrap()),
        ["Alpha", "alpine", "ALPS"]
    );
    assert_eq!(
        names(store.clients_by_name("ALP", None, 2).await.unwrap()),
        ["Alpha", "alpine"]
    );
    assert_eq!(
        names(
            store
                .clients_by_name("alp", Some(("alpine", "c-a2")), 10)
                .await
                .unwrap()
        ),
        ["ALPS"]
    );
    assert_eq!(
        names(
            store
                .clients_by_name("", Some(("alps", "d-1")), 10)
                .await
                .unwrap()
        ),
        ["Beta", "Same", "same"]
    );
    // One name twice: the id breaks the tie, and a page boundary between them skips neither.
    assert_eq!(
        names(store.clients_by_name("sa", None, 1).await.unwrap()),
        ["Same"]
    );
    assert_eq!(
        names(
            store
                .clients_by_name("sa", Some(("same", "s-1")), 1)
                .await
                .unwrap()
        ),
        ["same"]
    );
    assert_eq!(
        names(store.clients_by_name("gamma", None, 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        names(store.clients_by_id_prefix("c-a", 10).await.unwrap()),
        ["Alpha", "alpine"]
    );
    // A renamed client is found by its new name.
    store
        .modify_client(
            "c-b",
            &audit("client.update", "c-b"),
            |c| -> Result<(), StoreError> {
                c.name = "Gamma".into();
                Ok(())
            },
        )
        .await
        .unwrap();
    assert_eq!(
        names(store.clients_by_name("gam", None, 10).await.unwrap()),
        ["Gamma"]
    );

    for (id, email) in [
        ("u1", "Ann@Example.com"),
        ("u2", "anna@example.com"),
        ("u3", "bob@example.com"),
    ] {
        store
            .insert_user(&user(id, email), &audit("user.create", id))
            .await
            .unwrap();
    }
    let emails = |v: Vec<UserRecord>| v.into_iter().map(|u| u.email).collect::<Vec<_>>();
    assert_eq!(
        emails(store.users_by_email("ANN", None, 10).await.unwrap()),
        ["Ann@Example.com", "anna@example.com"]
    );
    assert_eq!(
        emails(
            store
                .users_by_email("ann", Some("ann@example.com"), 10)
                .await
                .unwrap()
        ),
        ["anna@example.com"]
    );
    assert_eq!(store.users_by_email("", None, 10).await.unwrap().len(), 3);

    // Admins counted: enabled ones with the admin role, whatever else they hold.
    assert_eq!(store.count_admins().await.unwrap(), 0);
    for (id, email, roles, enabled) in [
        ("a1", "a1@example.com", vec!["admin"], true),
        ("a2", "a2@example.com", vec!["auditor", "admin"], true),
        ("a3", "a3@example.com", vec!["admin"], false),
        ("a4", "a4@example.com", vec!["auditor"], true),
    ] {
        let mut u = user(id, email);
        u.roles = roles.into_iter().map(str::to_string).collect();
        u.enabled = enabled;
        store.insert_user(&u, &audit("user.create", id)).await.unwrap();
    }
    assert_eq!(store.count_admins().await.unwrap(), 2);

    // The trail: newest first, exact filters, paged below an id, a time range.
    let mut entry = audit("console.test", "t-1");
    entry.actor = "user:u1".into();
    store.audit(&entry).await.unwrap();
    entry.target = "t-2".into();
    store.audit(&entry).await.unwrap();
    let all = store
        .audit_page(&AuditFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let by_actor = AuditFilter {
        actor: Some("user:u1".into()),
        ..Default::default()
    };
    let mine = store.audit_page(&by_actor, None, 100).await.unwrap();
    assert_eq!(
        mine.iter().map(|e| e.entry.target.as_str()).collect::<Vec<_>>(),
        ["t-2", "t-1"]
    );
    let older = store.audit_page(&by_actor, Some(mine[0].id), 100).await.unwrap();
    assert_eq!(older.len(), 1);
    let on_target = AuditFilter {
        action: Some("console.test".into()),
        target: Some("t-1".into()),
        ..Default::default()
    };
    assert_eq!(store.audit_page(&on_target, None, 100).await.unwrap().len(), 1);
    let t = now();
    let future = AuditFilter {
        since: Some(t + 3600),
        ..Default::default()
    };
    assert!(store.audit_page(&future, None, 100).await.unwrap().is_empty());
    let past = AuditFilter {
        until: Some(t - 3600),
        ..Default::default()
    };
    assert!(store.audit_page(&past, None, 100).await.unwrap().is_empty());
    let now_range = AuditFilter {
        since: Some(t - 3600),
        until: Some(t + 3600),
        ..by_actor
    };
    assert_eq!(store.audit_page(&now_range, None, 100).await.unwrap().len(), 2);
}

/// Device requests (RFC 8628): a user code is unique among live requests, found only while
/// pending, answered once; polls are paced (slow_down grows the interval) and, of any number of
/// racing polls of an approved request, exactly one gets it, with its refresh token stored in
/// the same transaction.
async fn device_requests_are_answered_once_and_paced(store: &Store) {
    use tessera::model::device::{DeviceRecord, DeviceStatus, Poll};
    let t = now();
    store
        .insert_client(&client("c1"), None, &audit("client.create", "c1"))
        .await
        .unwrap();
    store
        .insert_user(&user("u1", "u1@example.com"), &audit("user.create", "u1"))
        .await
        .unwrap();
    let device = |id: &str, user_code: &str, expires_at: i64, interval: i64| DeviceRecord {
        id: id.into(),
        user_code: user_code.into(),
        grant: Grant {
            user_id: String::new(),
            scope: vec!["orders:read".into()],
            nonce: None,
            redirect_uri: None,
            code_challenge: None,
            dpop_jkt: None,
            auth_time: 0,
            ..grant("c1", "")
        },
        status: DeviceStatus::Pending,
        created_at: t,
        expires_at,
        interval,
        last_polled_at: None,
    };
    assert!(
        store
            .insert_device(&device("d1", "uc1", t + 60, 5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_device(&device("d2", "uc1", t + 60, 5))
            .await
            .unwrap(),
        "a live request's user code is not drawn twice"
    );
    // An expired request's code may be drawn again.
    assert!(store.insert_device(&device("d3", "uc3", t - 1, 5)).await.unwrap());
    assert!(
        store
            .insert_device(&device("d4", "uc3", t + 60, 5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.pending_device("uc1").await.unwrap(),
        Some(device("d1", "uc1", t + 60, 5))
    );
    assert_eq!(store.pending_device("nope").await.unwrap(), None);

    // Pacing: the first poll is pending, one right after it slows down, and again.
    let none = |_: &Grant| None;
    let yes = |_: &Grant| true;
    assert_eq!(
        store.poll_device("d1", "c1", 1, yes, none).await.unwrap(),
        Poll::Pending
    );
    assert_eq!(
        store.poll_device("d1", "c1", 1, yes, none).await.unwrap(),
        Poll::SlowDown(10)
    );
    assert_eq!(
        store.poll_device("d1", "c1", 1, yes, none).await.unwrap(),
        Poll::SlowDown(15)
    );
    assert_eq!(
        store.poll_device("d1", "other", 1, yes, none).await.unwrap(),
        Poll::Unknown
    );
    assert_eq!(
        store.poll_device("d9", "c1", 1, yes, none).await.unwrap(),
        Poll::Unknown
    );

    // Answered once: a second answer (another screen) changes nothing.
    let scope = vec!["orders:read".to_string()];
    assert!(store.decide_device("d4", Some(("u1", t, &scope))).await.unwrap());
    assert!(!store.decide_device("d4", None).await.unwrap());
    assert_eq!(store.pending_device("uc3").await.unwrap(), None, "answered");
    assert!(store.decide_device("d1", None).await.unwrap());
    assert!(!store.decide_device("d3", None).await.unwrap(), "expired");

    // A poll the approved request does not match (the client changed since) spends nothing.
    assert_eq!(
        store.poll_device("d4", "c1", 1, |_| false, none).await.unwrap(),
        Poll::Refused
    );

    // Eight racing polls of the approved one: one gets it (and its refresh token), the others
    // find it spent.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .poll_device(
                        "d4",
                        "c1",
                        1,
                        |_| true,
                        |g| {
                            Some(RefreshRecord {
                                grant: g.clone(),
                                ..refresh_token(&format!("drt{i}"), &format!("dfam{i}"), &format!("djti{i}"))
                            })
                        },
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut approved = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Poll::Approved(g) => approved.push(g),
            Poll::Spent => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].user_id, "u1");
    assert_eq!(approved[0].scope, scope);
    assert_eq!(
        store.poll_device("d4", "c1", 1, yes, none).await.unwrap(),
        Poll::Spent
    );
    // The winner's refresh token was stored (and only its); it rotates.
    let mut rotated = 0;
    for i in 0..8 {
        let next = refresh_token(&format!("drt{i}-next"), &format!("dfam{i}"), "x");
        if matches!(
            store
                .rotate_refresh(&format!("drt{i}"), "c1", |_| Some(next.clone()))
                .await
                .unwrap(),
            tessera::model::Refresh::Rotated(_)
        ) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "exactly one refresh token was stored");

    // An expired request answers so, until housekeeping forgets it.
    // (Kept an hour past expiry, so that a late poll still hears expired_token.)
    assert!(store.insert_device(&device("d6", "uc6", t - 1, 5)).await.unwrap());
    assert!(
        store
            .insert_device(&device("d5", "uc5", t - 3601, 5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.poll_device("d5", "c1", 1, yes, none).await.unwrap(),
        Poll::Expired
    );
    assert!(store.prune_sign_in().await.unwrap() >= 1);
    assert_eq!(
        store.poll_device("d5", "c1", 1, yes, none).await.unwrap(),
        Poll::Unknown
    );
    assert_eq!(
        store.poll_device("d3", "c1", 1, yes, none).await.unwrap(),
        Poll::Unknown,
        "replaced"
    );
    assert_eq!(
        store.poll_device("d6", "c1", 1, yes, none).await.unwrap(),
        Poll::Expired,
        "kept"
    );
}

/// Self-registered clients: stored with how they came to be, counted against a cap under
/// racing writers, gated by an initial access token whose uses are spent only by a stored
/// client, and pruned when never used unless approved.
async fn registrations_are_capped_gated_and_pruned(store: &Store) {
    use tessera::model::registration::{InitialToken, Origin, Registered, Registration};
    let t = now();
    let registered = |id: &str, approved: bool| {
        let mut c = client(id);
        c.created_at = t - 100;
        c.secrets.clear();
        c.registration = Some(Registration {
            origin: Origin::Registration,
            access_token: Some("ab".repeat(32)),
            approved,
            metadata: serde_json::json!({"logo_uri": "https://a.example/l.png"})
                .as_object()
                .cloned()
                .unwrap(),
            fresh_until: None,
        });
        c
    };
    let token = InitialToken {
        id: "it1".into(),
        hash: "cd".repeat(32),
        note: "ci".into(),
        created_at: t,
        expires_at: t + 60,
        uses_left: 2,
    };
    store
        .insert_initial_token(&token, &audit("registration_token.create", "it1"))
        .await
        .unwrap();
    assert_eq!(
        store.initial_token(&token.hash, t).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        store.initial_token(&token.hash, t + 60).await.unwrap(),
        None,
        "expired"
    );
    // Eight racers with a two-use token and room for all: exactly two stored.
    let race = |prefix: &'static str, cap: u64, token: Option<String>| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let c = registered(&format!("{prefix}{i}"), false);
                let token = token.clone();
                tokio::spawn(async move {
                    store
                        .register_client(&c, cap, token.as_deref(), t, &audit("client.register", &c.id))
                        .await
                        .unwrap()
                })
            })
            .collect();
        async move {
            let mut outcomes = Vec::new();
            for h in handles {
                outcomes.push(h.await.unwrap());
            }
            let count = |o: Registered| outcomes.iter().filter(|x| **x == o).count();
            (
                count(Registered::Stored),
                count(Registered::TokenRefused),
                count(Registered::Full),
            )
        }
    };
    assert_eq!(race("t", 100, Some(token.hash.clone())).await, (2, 6, 0));
    assert_eq!(
        store.initial_token(&token.hash, t).await.unwrap(),
        None,
        "used up"
    );
    // Eight racers without a token and room for one more: exactly one stored.
    assert_eq!(race("c", 3, None).await, (1, 0, 7));
    // Up to the cap, and no further.
    let approved = registered("approved", true);
    assert_eq!(
        store
            .register_client(&approved, 4, None, t, &audit("client.register", "approved"))
            .await
            .unwrap(),
        Registered::Stored
    );
    assert_eq!(
        store
            .register_client(
                &registered("late", false),
                4,
                None,
                t,
                &audit("client.register", "late")
            )
            .await
            .unwrap(),
        Registered::Full
    );
    // What was stored reads back whole.
    let stored = store.client("approved").await.unwrap().unwrap();
    assert_eq!(stored.registration, approved.registration);
    // An operator's client does not count, nor is it pruned.
    store
        .insert_client(&client("op"), None, &audit("client.create", "op"))
        .await
        .unwrap();
    let pruned = store
        .prune_registrations(t - 50, 100, &audit("client.prune_unused", ""))
        .await
        .unwrap();
    assert_eq!(pruned.len(), 3, "the three unused, unapproved ones: {pruned:?}");
    assert!(store.client("approved").await.unwrap().is_some());
    assert!(store.client("op").await.unwrap().is_some());
    assert!(
        store
            .prune_registrations(t - 50, 100, &audit("client.prune_unused", ""))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .delete_initial_token("it1", &audit("registration_token.revoke", "it1"))
            .await
            .unwrap()
    );
    assert!(store.initial_tokens().await.unwrap().is_empty());
}

/// Trust policies are stored whole, changed under the write lock, reported by the change feed,
/// audited, and go with their client.
async fn trust_policies_round_trip(store: &Store) {
    use tessera::model::trust::{TrustKeys, TrustPolicy};
    let mut c = client("fed");
    c.flows.auth = tessera::model::auth::TokenAuth::PrivateKeyJwt;
    c.secrets.clear();
    store
        .insert_client(&c, None, &audit("client.create", "fed"))
        .await
        .unwrap();
    let seq0 = store.change_seq().await.unwrap();
    let policy = TrustPolicy {
        id: "t1".into(),
        name: "ci".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        keys: TrustKeys::JwksUri("https://token.actions.githubusercontent.com/.well-known/jwks".into()),
        audience: "https://auth.example".into(),
        subject: "repo:acme/billing:ref:refs/heads/*".into(),
        claims: [("repository_owner".to_string(), "acme".to_string())].into(),
        client_id: "fed".into(),
        enabled: true,
        created_at: now(),
        updated_at: now(),
    };
    assert!(
        store
            .insert_trust_policy(&policy, &audit("trust.create", "t1"))
            .await
            .unwrap()
    );
    let orphan = TrustPolicy {
        id: "t2".into(),
        client_id: "nobody".into(),
        ..policy.clone()
    };
    assert!(
        !store
            .insert_trust_policy(&orphan, &audit("trust.create", "t2"))
            .await
            .unwrap()
    );
    assert_eq!(store.trust_policy("t1").await.unwrap().as_ref(), Some(&policy));
    let changed = store
        .modify_trust_policy("t1", &audit("trust.disable", "t1"), |p| {
            p.enabled = false;
            Ok::<(), tessera::store::StoreError>(())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(!changed.enabled);
    assert_eq!(store.trust_policies().await.unwrap(), [changed]);
    let batch = store.changes_since(seq0).await.unwrap();
    assert!(batch.trust && !batch.keys, "{batch:?}");
    assert!(
        store
            .delete_client("fed", &audit("client.delete", "fed"))
            .await
            .unwrap()
    );
    assert_eq!(store.trust_policies().await.unwrap(), [], "gone with its client");
    assert!(
        !store
            .delete_trust_policy("t1", &audit("trust.delete", "t1"))
            .await
            .unwrap()
    );
}

/// A client assertion's id is accepted once until it expires, however many writers race with
/// it; after its expiry (by the caller's clock) it may be recorded again, and pruning forgets it.
async fn assertions_are_used_once_under_races(store: &Store) {
    let t = now();
    let racers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.use_assertion("a1", t + 60, t).await.unwrap() })
    });
    let mut won = 0;
    for r in racers {
        won += u32::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one writer uses an assertion");
    assert!(!store.use_assertion("a1", t + 60, t + 59).await.unwrap());
    assert!(store.use_assertion("a2", t + 60, t).await.unwrap());
    // Expired by the caller's clock: usable again (it is refused for its expiry anyway).
    assert!(store.use_assertion("a1", t + 200, t + 61).await.unwrap());
    assert!(!store.use_assertion("a1", t + 200, t + 62).await.unwrap());
    assert!(store.use_assertion("old", t - 10, t - 20).await.unwrap());
    assert_eq!(store.prune_assertions().await.unwrap(), 1);
    // Batched: one statement, each id new at most once, in order; a live one refused, an
    // expired one taken over.
    let batch = |ids: &[(&str, i64)]| ids.iter().map(|(i, e)| (i.to_string(), *e)).collect::<Vec<_>>();
    let won = store
        .use_assertions(
            &batch(&[("b1", t + 60), ("a2", t + 60), ("b1", t + 60), ("b2", t + 60)]),
            t,
        )
        .await
        .unwrap();
    assert_eq!(won, [true, false, false, true]);
    assert_eq!(
        store
            .use_assertions(&batch(&[("b1", t + 300)]), t + 61)
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(store.use_assertions(&[], t).await.unwrap(), Vec::<bool>::new());
    // Batches racing from several writers: each id won once.
    let racers = (0..4).map(|_| {
        let store = store.clone();
        let ids = batch(&[("r1", t + 60), ("r2", t + 60), ("r3", t + 60)]);
        tokio::spawn(async move { store.use_assertions(&ids, t).await.unwrap() })
    });
    let mut wins = [0; 3];
    for r in racers {
        for (i, w) in r.await.unwrap().into_iter().enumerate() {
            wins[i] += u32::from(w);
        }
    }
    assert_eq!(wins, [1, 1, 1]);
}

async fn clients_round_trip(store: &Store) {
    let seq0 = store.change_seq().await.unwrap();
    let c = client("c1");
    assert!(
        store
            .insert_client(&c, None, &audit("client.create", "c1"))
            .await
            .unwrap()
    );
    assert_eq!(store.client("c1").await.unwrap(), Some(c.clone()));
    assert_eq!(store.client("nope").await.unwrap(), None);
    assert!(
        store
            .insert_client(&client("c0"), None, &audit("client.create", "c0"))
            .await
            .is_ok()
    );

    // Streaming, paging and listing agree.
    let mut streamed = Vec::new();
    assert_eq!(store.for_each_client(|c| streamed.push(c)).await.unwrap(), 2);
    assert_eq!(
        streamed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c0", "c1"]
    );
    assert_eq!(streamed[1], c);
    let page = store.clients_page(Some("c0"), 10).await.unwrap();
    assert_eq!(page, vec![c.clone()]);
    assert_eq!(store.clients().await.unwrap().len(), 2);
    assert_eq!(store.max_token_ttl().await.unwrap(), 600);

    // Modify, rotate a secret, delete: each is one change, each is audited.
    let changed = store
        .modify_client::<tessera::store::StoreError>("c1", &audit("client.update", "c1"), |c| {
            c.enabled = false;
            c.can_introspect = true;
            c.scopes = vec!["z".into()];
            Ok(())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(!changed.enabled && changed.can_introspect);
    assert_eq!(store.client("c1").await.unwrap().unwrap().scopes, ["z"]);
    let s2 = SecretRecord {
        id: "c1-s2".into(),
        kind: SecretKind::Argon2id,
        hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y".into(),
        created_at: now(),
        expires_at: None,
    };
    let rotated = store
        .rotate_secret("c1", &s2, now() + 60, now(), &audit("client.rotate_secret", "c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.secrets.len(), 2);
    assert!(rotated.secrets[0].expires_at.is_some_and(|t| t >= now() + 59));
    assert_eq!(rotated.secrets[1].expires_at, None);
    assert!(
        store
            .rotate_secret("nope", &s2, 0, now(), &audit("x", "y"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .delete_client("c1", &audit("client.delete", "c1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_client("c1", &audit("client.delete", "c1"))
            .await
            .unwrap()
    );
    assert_eq!(store.client("c1").await.unwrap(), None);

    let batch = store.changes_since(seq0).await.unwrap();
    assert_eq!(batch.clients, ["c1", "c0"]);
    assert_eq!(batch.seq, seq0 + 5, "one numbered change per write, no holes");
    let events = store.audit_events(0, 0, 100).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "client.create",
            "client.create",
            "client.update",
            "client.rotate_secret",
            "client.delete"
        ]
    );
    assert_eq!(events[0].entry, audit("client.create", "c1"));
    let after_first = store.audit_events(0, events[0].id, 2).await.unwrap();
    assert_eq!(after_first.len(), 2);
    assert_eq!(after_first[0].id, events[1].id);
}

async fn modify_is_atomic_under_concurrent_writers(store: &Store) {
    let mut c = client("busy");
    c.scopes.clear();
    store
        .insert_client(&c, None, &audit("client.create", "busy"))
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .modify_client::<tessera::store::StoreError>(
                        "busy",
                        &audit("client.update", "busy"),
                        |c| {
                            c.scopes.push(format!("s{i}"));
                            Ok(())
                        },
                    )
                    .await
                    .unwrap()
                    .unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut scopes = store.client("busy").await.unwrap().unwrap().scopes;
    scopes.sort();
    let mut want: Vec<_> = (0..16).map(|i| format!("s{i}")).collect();
    want.sort();
    assert_eq!(scopes, want, "a concurrent update was lost");
}

async fn once_only_bootstrap_and_first_key_under_races(store: &Store) {
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let c = client(&format!("quick{i}"));
                let made = store
                    .insert_client(&c, Some("bootstrap.quickstart"), &audit("client.create", &c.id))
                    .await
                    .unwrap();
                let k = key(&format!("k{i}"), now());
                let keyed = store
                    .insert_first_key(&k, &audit("key.create", &k.kid))
                    .await
                    .unwrap();
                (made, keyed)
            })
        })
        .collect();
    let mut made = 0;
    let mut keyed = 0;
    for t in tasks {
        let (m, k) = t.await.unwrap();
        made += m as usize;
        keyed += k as usize;
    }
    assert_eq!(made, 1, "exactly one bootstrap client");
    assert_eq!(keyed, 1, "exactly one first key");
    assert_eq!(store.clients().await.unwrap().len(), 1);
    assert_eq!(store.live_keys(now()).await.unwrap().len(), 1);
    let winner = store.clients().await.unwrap().remove(0).id;
    assert_eq!(store.meta("bootstrap.quickstart").await.unwrap(), Some(winner));
}

async fn scheduled_rotation_happens_once(store: &Store) {
    let t0 = now() - 100;
    store
        .insert_first_key(&key("old", t0), &audit("key.create", "old"))
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut k = key(&format!("new{i}"), 0);
                let entry = audit("key.rotate", &k.kid);
                store
                    .rotate_key(&mut k, 10, 20, Some(("old", t0)), None, &entry)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = Vec::new();
    for t in tasks {
        if let Some(retire_at) = t.await.unwrap() {
            rotated.push(retire_at);
        }
    }
    assert_eq!(
        rotated.len(),
        1,
        "nodes racing to rotate rotated {} times",
        rotated.len()
    );
    let keys = store.all_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == "old").unwrap();
    assert_eq!(old.retired_at, Some(rotated[0]));
    let new = keys.iter().find(|k| k.kid != "old").unwrap();
    assert!(new.activates_at >= new.created_at + 10);
    assert_eq!(rotated[0], new.activates_at + 20);
    // A manual rotation (no condition) always happens.
    let mut k = key("manual", 0);
    assert!(
        store
            .rotate_key(&mut k, 0, 0, None, None, &audit("key.rotate", "manual"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn raise_meta_keeps_the_largest(store: &Store) {
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = [300, 60, 900, 120, 600]
        .into_iter()
        .map(|v| {
            let store = store.clone();
            tokio::spawn(async move { store.raise_meta("jwks.max_age", v).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.meta("jwks.max_age").await.unwrap().as_deref(), Some("900"));
    store.raise_meta("jwks.max_age", 10).await.unwrap();
    assert_eq!(store.meta("jwks.max_age").await.unwrap().as_deref(), Some("900"));
}

async fn revocations(store: &Store) {
    let seq0 = store.change_seq().await.unwrap();
    store.revoke_token("j1", "c", now() + 100).await.unwrap();
    store.revoke_token("j1", "c", now() + 100).await.unwrap();
    store.revoke_token("j2", "c", now() - 1).await.unwrap();
    let batch = store.changes_since(seq0).await.unwrap();
    assert_eq!(
        batch.revocations,
        ["j1", "j2"],
        "a repeated revocation is not a change"
    );
    let mut live = Vec::new();
    store
        .for_each_revoked(|j, e| live.push((j.to_string(), e)))
        .await
        .unwrap();
    assert_eq!(live.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(), ["j1"]);
    let asked = store
        .revoked_tokens(&["j1".into(), "j2".into(), "j3".into()])
        .await
        .unwrap();
    assert_eq!(asked.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(), ["j1"]);
    assert_eq!(store.prune_revocations().await.unwrap(), 1);
}

async fn change_feed_is_ordered_and_detects_gaps(store: &Store) {
    let start = store.change_seq().await.unwrap();
    for i in 0..5 {
        store
            .revoke_token(&format!("g{i}"), "c", now() + 100)
            .await
            .unwrap();
    }
    let all = store.changes_since(start).await.unwrap();
    assert_eq!(all.seq, start + 5);
    assert_eq!(all.revocations, ["g0", "g1", "g2", "g3", "g4"]);
    assert!(!all.gap);
    let tail = store.changes_since(start + 3).await.unwrap();
    assert_eq!(tail.revocations, ["g3", "g4"]);
    let none = store.changes_since(all.seq).await.unwrap();
    assert_eq!((none.seq, none.revocations.len(), none.gap), (all.seq, 0, false));
    // Pruning everything but the newest entry leaves a reader at `start + 1` with a gap to
    // report: it must reload everything rather than miss what was pruned.
    assert_eq!(store.prune_changes(std::time::Duration::ZERO).await.unwrap(), 4);
    assert!(store.changes_since(start + 1).await.unwrap().gap);
    assert!(!store.changes_since(start + 4).await.unwrap().gap);
    // A reader ahead of the log (the database was restored, or failed over to a replica that
    // had not seen everything) must reload too.
    assert!(store.changes_since(start + 100).await.unwrap().gap);
    assert_eq!(store.change_seq().await.unwrap(), start + 5);
}

async fn export_then_import_is_identical(store: &Store) {
    store
        .insert_client(
            &client("x1"),
            Some("bootstrap.quickstart"),
            &audit("client.create", "x1"),
        )
        .await
        .unwrap();
    store
        .insert_first_key(&key("kx", now() - 5), &audit("key.create", "kx"))
        .await
        .unwrap();
    store.revoke_token("jx", "x1", now() + 100).await.unwrap();
    store
        .insert_user(&user("u1", "ada@example.com"), &audit("user.create", "u1"))
        .await
        .unwrap();
    let mut keyed = client("x2");
    keyed.flows.auth = tessera::model::auth::TokenAuth::PrivateKeyJwt;
    keyed.flows.jwks_uri = Some("https://x2.example/jwks".into());
    keyed.secrets.clear();
    store
        .insert_client(&keyed, None, &audit("client.create", "x2"))
        .await
        .unwrap();
    let policy = tessera::model::trust::TrustPolicy {
        id: "tx".into(),
        name: "ci".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        keys: tessera::model::trust::TrustKeys::Discovery,
        audience: "https://auth.example".into(),
        subject: "repo:acme/billing:ref:refs/heads/main".into(),
        claims: Default::default(),
        client_id: "x2".into(),
        enabled: true,
        created_at: now(),
        updated_at: now(),
    };
    store
        .insert_trust_policy(&policy, &audit("trust.create", "tx"))
        .await
        .unwrap();
    let mut text = Vec::new();
    let count = tessera::transfer::export(store, &mut text).await.unwrap();
    assert_eq!(
        count,
        1 + 2 + 1 + 1 + 1 + 1 + 5,
        "meta, two clients, a trust policy, user, key, revocation, five audit events"
    );

    let target = fresh(store.engine_name()).await.unwrap();
    let records = tessera::transfer::read(text.as_slice()).unwrap();
    target.store.import(&records).await.unwrap();
    assert_eq!(
        target.store.clients().await.unwrap(),
        store.clients().await.unwrap()
    );
    assert_eq!(
        target.store.all_keys().await.unwrap(),
        store.all_keys().await.unwrap()
    );
    assert_eq!(
        target.store.all_meta().await.unwrap(),
        store.all_meta().await.unwrap()
    );
    let events =
        |s: Vec<tessera::model::AuditEvent>| s.into_iter().map(|e| (e.at, e.entry)).collect::<Vec<_>>();
    assert_eq!(
        events(target.store.audit_events(0, 0, 100).await.unwrap()),
        events(store.audit_events(0, 0, 100).await.unwrap())
    );
    let mut revoked = Vec::new();
    target
        .store
        .for_each_revoked(|j, _| revoked.push(j.to_string()))
        .await
        .unwrap();
    assert_eq!(revoked, ["jx"]);
    assert_eq!(
        target.store.users_page(None, 10).await.unwrap(),
        store.users_page(None, 10).await.unwrap()
    );
    assert_eq!(target.store.trust_policies().await.unwrap(), [policy]);
    // Nodes on the target see the import through the change feed.
    let batch = target.store.changes_since(0).await.unwrap();
    assert_eq!(batch.clients, ["x1", "x2"]);
    assert!(batch.keys && batch.trust);
}

async fn import_refuses_a_store_in_use(store: &Store) {
    store
        .insert_client(&client("held"), None, &audit("client.create", "held"))
        .await
        .unwrap();
    let records = vec![tessera::store::Record::Client(client("other"))];
    let err = store.import(&records).await.unwrap_err();
    assert!(err.to_string().contains("already holds"), "{err}");
    assert_eq!(
        store.client("other").await.unwrap(),
        None,
        "a refused import wrote nothing"
    );
}

/// PostgreSQL hands out sequence numbers in the order they are taken, not the order their
/// transactions commit. Tessera numbers changes under the write lock instead; here a writer that
/// took a number and has not committed holds back every later writer, so a poller never sees a
/// later change before an earlier one.
/// A migration file edited after a store applied it is refused at start with one line, on
/// both engines; an unchanged store opens without taking the migration lock.
async fn an_edited_migration_is_refused_at_start(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = match engine {
        "sqlite" => format!("sqlite:{}/t.db", dir.path().display()),
        _ => {
            if pg::require("edited migration (postgres)").is_none() {
                return;
            }
            pg::fresh_database()
        }
    };
    let parsed = DatabaseUrl::parse(&url).unwrap();
    let store = Store::open(&parsed, true).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 12);
    store.close().await;
    Store::open(&parsed, false).await.unwrap().close().await;

    // What a store that ran another text of migration 3 looks like.
    let edit = "UPDATE schema_checksums SET sha256 = 'c0ffee' WHERE version = 3";
    {
        use sqlx::Connection;
        if engine == "sqlite" {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            assert_eq!(
                sqlx::query(edit).execute(&mut c).await.unwrap().rows_affected(),
                1
            );
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            assert_eq!(
                sqlx::query(edit).execute(&mut c).await.unwrap().rows_affected(),
                1
            );
        }
    }
    let err = Store::open(&parsed, false).await.unwrap_err();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("migration 3 was applied") && text.contains("checksum"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_migration_is_refused_at_start_on_sqlite() {
    an_edited_migration_is_refused_at_start("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_migration_is_refused_at_start_on_postgres() {
    an_edited_migration_is_refused_at_start("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_change_feed_never_skips_a_late_commit() {
    let Some(_) = pg::require("postgres_change_feed_never_skips_a_late_commit") else {
        return;
    };
    use sqlx::Connection;
    let url = pg::fresh_database();
    let store = Store::open(&DatabaseUrl::parse(&url).unwrap(), true)
        .await
        .unwrap();
    let start = store.change_seq().await.unwrap();

    // A slow writer: it takes the next number and holds its transaction open.
    let mut slow = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    sqlx::query("SELECT seq FROM change_head WHERE id = 1 FOR UPDATE")
        .execute(&mut slow)
        .await
        .unwrap();
    sqlx::query(
        "WITH next AS (UPDATE change_head SET seq = seq + 1 WHERE id = 1 RETURNING seq) \
         INSERT INTO changes (seq, entity, entity_id, at) SELECT seq, 'client', 'late', 0 FROM next",
    )
    .execute(&mut slow)
    .await
    .unwrap();

    // A fast writer starts after it and must wait.
    let fast = {
        let store = store.clone();
        tokio::spawn(async move { store.revoke_token("fast", "c", now() + 100).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !fast.is_finished(),
        "a later writer committed ahead of an earlier one"
    );
    let seen = store.changes_since(start).await.unwrap();
    assert_eq!(
        (seen.seq, seen.clients.len(), seen.revocations.len()),
        (start, 0, 0)
    );

    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    fast.await.unwrap().unwrap();
    let seen = store.changes_since(start).await.unwrap();
    assert_eq!(seen.clients, ["late"]);
    assert_eq!(seen.revocations, ["fast"]);
    assert_eq!(seen.seq, start + 2);
}

async fn users_round_trip_with_unique_emails(store: &Store) {
    let ada = user("u-ada", "Ada@Example.com");
    assert!(
        store
            .insert_user(&ada, &audit("user.create", "u-ada"))
            .await
            .unwrap()
    );
    assert_eq!(store.user("u-ada").await.unwrap().as_ref(), Some(&ada));
    // Email lookups and uniqueness ignore case.
    assert_eq!(
        store
            .user_by_email("ada@EXAMPLE.com")
            .await
            .unwrap()
            .map(|u| u.id),
        Some("u-ada".to_string())
    );
    let twin = user("u-twin", "ADA@example.COM");
    assert!(
        !store
            .insert_user(&twin, &audit("user.create", "u-twin"))
            .await
            .unwrap()
    );
    assert_eq!(store.user("u-twin").await.unwrap(), None);
    let bob = user("u-bob", "bob@example.com");
    assert!(
        store
            .insert_user(&bob, &audit("user.create", "u-bob"))
            .await
            .unwrap()
    );
    // A change to another user's email is refused and writes nothing.
    let taken = store
        .modify_user("u-bob", &audit("user.update", "u-bob"), |u| {
            u.email = "ada@example.com".into();
            Ok::<(), StoreError>(())
        })
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store.user("u-bob").await.unwrap().map(|u| u.email),
        Some("bob@example.com".into())
    );
    let changed = store
        .modify_user("u-bob", &audit("user.update", "u-bob"), |u| {
            u.enabled = false;
            u.name = None;
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(!changed.enabled && changed.name.is_none());
    assert_eq!(store.user("u-bob").await.unwrap(), Some(changed));
    assert_eq!(
        store
            .modify_user(
                "nobody",
                &audit("user.update", "nobody"),
                |_| Ok::<(), StoreError>(())
            )
            .await
            .unwrap(),
        None
    );
    // Paging by id.
    let first = store.users_page(None, 1).await.unwrap();
    assert_eq!(first.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["u-ada"]);
    let rest = store.users_page(Some("u-ada"), 10).await.unwrap();
    assert_eq!(rest.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["u-bob"]);
    assert!(
        store
            .delete_user("u-ada", &audit("user.delete", "u-ada"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_user("u-ada", &audit("user.delete", "u-ada"))
            .await
            .unwrap()
    );
    assert_eq!(store.user_by_email("ada@example.com").await.unwrap(), None);
    // Every change is in the audit trail; the refused ones are not.
    let actions: Vec<String> = store
        .audit_events(0, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.entry.action, e.entry.target))
        .collect();
    assert_eq!(
        actions,
        [
            "user.create u-ada",
            "user.create u-bob",
            "user.update u-bob",
            "user.delete u-ada"
        ]
    );
}

async fn sealing_again_and_rotating_refuse_a_moved_target(store: &Store) {
    let t0 = now() - 10;
    store
        .insert_first_key(&key("k1", t0), &audit("key.create", "k1"))
        .await
        .unwrap();
    // A batch that misses a stored key (one added since it was read) is refused whole.
    let partial = store
        .reseal_keys(
            &[],
            "master_key.sealing",
            "new",
            &audit("master_key.rotate", "new"),
        )
        .await;
    assert!(matches!(partial, Err(StoreError::Conflict(_))), "{partial:?}");
    assert_eq!(store.meta("master_key.sealing").await.unwrap(), None);
    store
        .reseal_keys(
            &[("k1".to_string(), vec![9, 9, 9])],
            "master_key.sealing",
            "new",
            &audit("master_key.rotate", "new"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.all_keys().await.unwrap()[0].sealed_private_key,
        vec![9, 9, 9]
    );
    // A key sealed before the sealing key changed is refused.
    let mut k = key("k2", 0);
    let stale = store
        .rotate_key(&mut k, 0, 0, None, None, &audit("key.rotate", "k2"))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.all_keys().await.unwrap().len(), 1);
    let mut k = key("k3", 0);
    assert!(
        store
            .rotate_key(&mut k, 0, 0, None, Some("new"), &audit("key.rotate", "k3"))
            .await
            .unwrap()
            .is_some()
    );
}

fn grant(client_id: &str, user_id: &str) -> Grant {
    Grant {
        client_id: client_id.into(),
        user_id: user_id.into(),
        scope: vec!["openid".into(), "offline_access".into()],
        auth_time: now(),
        nonce: Some("n".into()),
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: Some("c".into()),
        resources: vec!["https://api.example/".into()],
        dpop_jkt: Some("jkt".into()),
    }
}

fn refresh_token(id: &str, family: &str, jti: &str) -> RefreshRecord {
    let t = now();
    RefreshRecord {
        id: id.into(),
        family_id: family.into(),
        grant: grant("c1", "u1"),
        created_at: t,
        expires_at: t + 600,
        family_expires_at: t + 3600,
        access_jti: Some(jti.into()),
        access_expires_at: Some(t + 300),
    }
}

/// Sessions, consents, codes and refresh tokens: codes redeem once and refresh tokens rotate
/// once however many writers race (the store's write lock decides), a second use revokes, and
/// expired state is pruned.
async fn sign_in_state_is_single_use_under_races(store: &Store) {
    let t = now();
    store
        .insert_client(&client("c1"), None, &audit("client.create", "c1"))
        .await
        .unwrap();
    store
        .insert_user(&user("u1", "u1@example.com"), &audit("user.create", "u1"))
        .await
        .unwrap();

    // Sessions: found until they end or are deleted.
    let session = |id: &str, expires_at| SessionRecord {
        id: id.into(),
        user_id: "u1".into(),
        auth_time: t,
        created_at: t,
        expires_at,
    };
    store.insert_session(&session("s1", t + 60)).await.unwrap();
    store.insert_session(&session("s0", t - 1)).await.unwrap();
    assert_eq!(store.session("s1").await.unwrap(), Some(session("s1", t + 60)));
    assert_eq!(store.session("s0").await.unwrap(), None, "ended");
    assert!(store.delete_session("s1").await.unwrap());
    assert_eq!(store.session("s1").await.unwrap(), None);

    // Consent replaces what was there.
    assert_eq!(store.consent("u1", "c1").await.unwrap(), None);
    store.grant_consent("u1", "c1", &["openid".into()]).await.unwrap();
    store
        .grant_consent("u1", "c1", &["openid".into(), "email".into()])
        .await
        .unwrap();
    assert_eq!(
        store.consent("u1", "c1").await.unwrap(),
        Some(vec!["openid".to_string(), "email".to_string()])
    );

    // A code: a request that does not match changes nothing; then of eight racing
    // redemptions exactly one wins and the others revoke what it issued. (The grant is made
    // once: made again later, its `auth_time` could fall in the next second.)
    let granted = grant("c1", "u1");
    store
        .insert_code(&CodeRecord {
            id: "code1".into(),
            grant: granted.clone(),
            expires_at: t + 60,
            keep_until: t + 60,
        })
        .await
        .unwrap();
    let issued = move |n: usize| Issued {
        access_jti: format!("jti-{n}"),
        access_expires_at: t + 300,
        family_id: Some(format!("fam-{n}")),
    };
    assert_eq!(
        store
            .redeem_code("code1", |_| false, &issued(99), |_| unreachable!())
            .await
            .unwrap(),
        Redemption::Refused
    );
    assert_eq!(
        store
            .redeem_code("nope", |_| true, &issued(99), |_| unreachable!())
            .await
            .unwrap(),
        Redemption::Unknown
    );
    let store = Arc::new(store.clone());
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // The winner's first refresh token is stored with the redemption.
            let first = refresh_token(&format!("rt-{n}"), &format!("fam-{n}"), &format!("jti-{n}"));
            let r = store
                .redeem_code("code1", |g| g.client_id == "c1", &issued(n), |_| Some(first))
                .await
                .unwrap();
            (n, r)
        }));
    }
    let mut winner = None;
    let mut reused = 0;
    for task in tasks {
        match task.await.unwrap() {
            (n, Redemption::Redeemed(g)) => {
                assert!(winner.replace(n).is_none(), "two redemptions");
                assert_eq!(g, granted);
            }
            (_, Redemption::Reused(revoked)) => {
                reused += 1;
                assert!(revoked.iter().any(|(j, _)| j.starts_with("jti-")), "{revoked:?}");
            }
            (_, other) => panic!("{other:?}"),
        }
    }
    let winner = winner.expect("one redemption");
    assert_eq!(reused, 7);
    let revoked = store.revoked_tokens(&[format!("jti-{winner}")]).await.unwrap();
    assert_eq!(
        revoked.len(),
        1,
        "the winner's access token is revoked by the reuse"
    );
    assert_eq!(
        store
            .rotate_refresh(&format!("rt-{winner}"), "c1", |_| unreachable!())
            .await
            .unwrap(),
        Refresh::Unknown,
        "and its refresh token, stored in the same transaction, with its family"
    );

    // Refresh tokens: eight racing rotations of one token, exactly one wins; the reuse ends
    // the family, so the winner's new token is gone too.
    store
        .insert_refresh(&refresh_token("r1", "f1", "at-1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh("r1", "other", |_| unreachable!())
            .await
            .unwrap(),
        Refresh::Refused
    );
    assert_eq!(
        store.rotate_refresh("r1", "c1", |_| None).await.unwrap(),
        Refresh::Refused,
        "a request the caller refuses spends nothing"
    );
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh("r1", "c1", |old| {
                    let mut next = refresh_token(&format!("r1-{n}"), &old.family_id, &format!("at-1-{n}"));
                    next.family_expires_at = old.family_expires_at;
                    Some(next)
                })
                .await
                .unwrap()
        }));
    }
    let (mut rotated, mut reused, mut gone) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Refresh::Rotated(old) => {
                rotated += 1;
                assert_eq!(old.id, "r1");
            }
            Refresh::Reused(_) => reused += 1,
            // After the first reuse the family (r1 included) is gone.
            Refresh::Unknown => gone += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((rotated, reused >= 1, rotated + reused + gone), (1, true, 8));
    let next = store.revoked_tokens(&["at-1".to_string()]).await.unwrap();
    assert_eq!(next.len(), 1, "the family's access tokens are revoked");
    for n in 0..8 {
        assert_eq!(
            store
                .rotate_refresh(&format!("r1-{n}"), "c1", |_| unreachable!())
                .await
                .unwrap(),
            Refresh::Unknown
        );
    }

    // Revocation (RFC 7009) by its client only; then pruning.
    // (The record's own expiry: `refresh_token` reads the clock again, maybe a second later.)
    let r2 = refresh_token("r2", "f2", "at-2");
    let at2_expires = r2.access_expires_at.unwrap();
    store.insert_refresh(&r2).await.unwrap();
    assert_eq!(store.revoke_refresh("r2", "other").await.unwrap(), None);
    assert_eq!(
        store.revoke_refresh("r2", "c1").await.unwrap(),
        Some(vec![("at-2".to_string(), at2_expires)])
    );
    let mut old = refresh_token("r3", "f3", "at-3");
    old.family_expires_at = t - 1;
    store.insert_refresh(&old).await.unwrap();
    store
        .insert_code(&CodeRecord {
            id: "code-old".into(),
            grant: grant("c1", "u1"),
            expires_at: t - 10,
            keep_until: t - 1,
        })
        .await
        .unwrap();
    assert_eq!(
        store.prune_sign_in().await.unwrap(),
        3,
        "session s0, code-old, r3"
    );
}
