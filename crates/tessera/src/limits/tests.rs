use super::*;

fn guard(f: impl FnOnce(&mut LimitSettings)) -> Guard {
    let mut s = LimitSettings::default();
    f(&mut s);
    Guard::new(Limits::new(s).unwrap_or_default())
}

#[test]
fn proxy_header_is_read_only_from_trusted_proxies() {
    let g = guard(|s| {
        s.trusted_proxy_header = Some("X-Forwarded-For".into());
        s.trusted_proxies = vec!["10.0.0.0/8".into()];
    });
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", "198.51.100.7, 10.1.1.1".parse().unwrap());
    let proxy: IpAddr = "10.0.0.2".parse().unwrap();
    let stranger: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(
        g.client_address(proxy, &h),
        "198.51.100.7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        g.client_address(stranger, &h),
        stranger,
        "untrusted peer: header ignored"
    );
    // A client cannot slip in an address left of the one the proxy saw.
    h.insert("x-forwarded-for", "10.9.9.9, 198.51.100.7".parse().unwrap());
    assert_eq!(
        g.client_address(proxy, &h),
        "198.51.100.7".parse::<IpAddr>().unwrap()
    );
    h.insert("x-forwarded-for", "junk".parse().unwrap());
    assert_eq!(g.client_address(proxy, &h), proxy);
    // Off by default.
    assert_eq!(guard(|_| {}).client_address(proxy, &h), proxy);
}

#[test]
fn backoff_grows_and_is_the_same_for_any_id() {
    let g = guard(|s| s.failures_before_backoff = 3);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..2 {
        g.failed(Subject::Client("known"), a);
        g.failed(Subject::Client("unknown"), a);
    }
    assert_eq!(g.backoff(Subject::Client("known"), a, false), None);
    g.failed(Subject::Client("known"), a);
    g.failed(Subject::Client("unknown"), a);
    let one = g
        .backoff(Subject::Client("known"), a, false)
        .map(|r| r.retry_after.as_secs_f64());
    let other = g
        .backoff(Subject::Client("unknown"), a, false)
        .map(|r| r.retry_after.as_secs_f64());
    assert!(one.is_some_and(|s| s > 0.9 && s <= 1.0), "{one:?}");
    assert!(other.is_some_and(|s| s > 0.9 && s <= 1.0), "{other:?}");
    g.failed(Subject::Client("known"), a);
    let two = g
        .backoff(Subject::Client("known"), a, false)
        .map(|r| r.retry_after.as_secs_f64());
    assert!(two.is_some_and(|s| s > 1.9 && s <= 2.0), "{two:?}");
    let tracked = g.tracked_failures();
    g.succeeded(Subject::Client("known"), a);
    assert_eq!(g.tracked_failures(), tracked - 1, "a success clears its id");
    assert_eq!(
        g.backoff(Subject::Client("known"), "192.0.2.2".parse().unwrap(), false),
        None
    );
    g.succeeded(Subject::Client("unknown"), a);
    assert_eq!(
        g.id_entries.load(Ordering::Relaxed),
        0,
        "no id left: successes are free"
    );
}

#[test]
fn address_failures_back_off_every_id_from_that_address() {
    let g = guard(|s| s.address_failures_before_backoff = 4);
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    for i in 0..4 {
        g.failed(Subject::Client(&format!("id{i}")), a);
    }
    // Same /64, another id.
    assert!(
        g.backoff(Subject::Client("fresh"), "2001:db8::99".parse().unwrap(), false)
            .is_some()
    );
    assert!(
        g.backoff(Subject::Client("fresh"), "2001:db9::1".parse().unwrap(), false)
            .is_none()
    );
}

#[test]
fn a_count_does_not_start_over_before_its_back_off_has_been_quiet_for_the_window() {
    let g = guard(|s| {
        s.failures_before_backoff = 1;
        s.failure_window = 1;
    });
    let a: IpAddr = "192.0.2.9".parse().unwrap();
    g.failed(Subject::Client("x"), a);
    let first = g
        .backoff(Subject::Client("x"), a, false)
        .map(|r| r.retry_after.as_secs_f64());
    assert!(first.is_some_and(|s| s > 0.9), "{first:?}");
    // The back-off (1 s) ends; 0.2 s later the window (1 s) has not passed since its end.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(g.backoff(Subject::Client("x"), a, false), None);
    g.failed(Subject::Client("x"), a);
    let second = g
        .backoff(Subject::Client("x"), a, false)
        .map(|r| r.retry_after.as_secs_f64());
    assert!(
        second.is_some_and(|s| s > 1.9),
        "the count started over: {second:?}"
    );
}

#[test]
fn a_full_table_refuses_expensive_checks_instead_of_forgetting() {
    let g = guard(|s| {
        s.failures_before_backoff = 1000;
        s.address_failures_before_backoff = 1000;
    });
    for i in 0..(MAX_TRACKED / 2) as u32 {
        let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        g.failed(Subject::Client(&format!("spray-{i}")), a);
    }
    assert_eq!(
        g.backoff(Subject::Client("fresh"), "198.51.100.1".parse().unwrap(), false),
        None
    );
    g.failed(Subject::Client("one-more"), "198.51.100.2".parse().unwrap());
    let refused = g.backoff(Subject::Client("fresh"), "198.51.100.1".parse().unwrap(), false);
    assert!(
        refused.is_some_and(|r| r.retry_after > Duration::from_secs(50)),
        "{refused:?}"
    );
}

#[test]
fn a_dual_stack_peer_is_recognised_as_its_ipv4_proxy() {
    let g = guard(|s| {
        s.trusted_proxy_header = Some("X-Forwarded-For".into());
        s.trusted_proxies = vec!["10.0.0.0/8".into()];
    });
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
    assert_eq!(
        g.client_address(mapped, &h),
        "198.51.100.7".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn client_ids_and_accounts_never_share_a_count() {
    let g = guard(|s| s.failures_before_backoff = 2);
    let a: IpAddr = "192.0.2.20".parse().unwrap();
    // Whatever the client id says, it counts as a client id.
    for id in ["login:bob@example.com", "bob@example.com"] {
        for _ in 0..5 {
            g.failed(Subject::Client(id), a);
        }
        assert!(g.backoff(Subject::Client(id), a, false).is_some());
    }
    assert_eq!(g.backoff(Subject::Account("bob@example.com"), a, false), None);
    // And the other way round.
    let b: IpAddr = "192.0.2.21".parse().unwrap();
    for _ in 0..5 {
        g.failed(Subject::Account("alice@example.com"), b);
    }
    assert!(
        g.backoff(Subject::Account("alice@example.com"), b, false)
            .is_some()
    );
    assert_eq!(g.backoff(Subject::Client("alice@example.com"), b, false), None);
}

#[test]
fn an_account_is_held_per_address_and_only_strangers_are_held_at_the_ceiling() {
    let g = guard(|s| {
        s.failures_before_backoff = 3;
        s.account_failures_before_backoff = 6;
    });
    let (guesser, owner) = ("192.0.2.30".parse().unwrap(), "198.51.100.30".parse().unwrap());
    let bob = Subject::Account("bob@example.com");
    for _ in 0..3 {
        g.failed(bob, guesser);
    }
    // The guesser's address is held; the owner elsewhere is not.
    assert!(g.backoff(bob, guesser, false).is_some());
    assert!(
        g.backoff(bob, guesser, true).is_some(),
        "a cookie does not lift an address's count"
    );
    assert_eq!(g.backoff(bob, owner, false), None);
    // Guessing spread over addresses reaches the account's ceiling: strangers are held
    // everywhere, a browser that signed in before is not.
    for i in 0..3u8 {
        g.failed(bob, IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, i)));
    }
    assert!(g.backoff(bob, owner, false).is_some());
    assert_eq!(g.backoff(bob, owner, true), None);
    // The owner's success clears the account, not the guesser's address.
    g.succeeded(bob, owner);
    assert_eq!(g.backoff(bob, "198.51.100.31".parse().unwrap(), false), None);
    assert!(g.backoff(bob, guesser, false).is_some());
}

#[test]
fn a_catch_all_proxy_network_needs_saying_so() {
    for any in ["0.0.0.0/0", "::/0"] {
        let mut s = LimitSettings {
            trusted_proxy_header: Some("X-Forwarded-For".into()),
            trusted_proxies: vec!["10.0.0.0/8".into(), any.into()],
            ..Default::default()
        };
        let refused = Limits::new(s.clone()).err().unwrap_or_default();
        assert!(refused.contains("allow_any_proxy"), "{refused}");
        s.allow_any_proxy = true;
        assert!(Limits::new(s).is_ok_and(|l| l.trusts_any_proxy()));
    }
}

#[test]
fn bounds_are_checked() {
    let bad = LimitSettings {
        max_concurrent_requests: 0,
        ..Default::default()
    };
    assert!(Limits::new(bad).is_err());
    let half = LimitSettings {
        trusted_proxy_header: Some("X-Forwarded-For".into()),
        ..Default::default()
    };
    assert!(Limits::new(half).is_err());
    assert_eq!(retry_after_seconds(Duration::from_millis(1200)), 2);
    assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
}
