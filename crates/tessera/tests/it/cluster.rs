//! Many nodes on one PostgreSQL: real `tessera serve` processes, real HTTP, a real database
//! (the shared test server, or one of the test's own where the test stops it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::kit::{Process, decode_unverified, eventually, pg, tessera_cmd};

/// How long a change made on one node may take to reach every other node: the stated worst
/// case (README, "Running many nodes").
const BOUND: Duration = Duration::from_secs(5);

/// Runs the CLI on `url` with the cluster's master key; returns (status, stdout, stderr).
fn tessera(dir: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = tessera_cmd(dir)
        .args(args)
        .args(["--database", url])
        .env("TESSERA_MASTER_KEY_FILE", dir.join("master.key"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn tessera_json(dir: &Path, url: &str, args: &[&str]) -> Value {
    let (code, out, err) = tessera(dir, url, args);
    assert_eq!(code, 0, "tessera {args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

struct Cluster {
    dir: TempDir,
    url: String,
    issuer: String,
    nodes: Vec<Process>,
    http: reqwest::Client,
}

impl Cluster {
    /// A shared master key and a config (1 s JWKS cache lifetime, so a rotated key signs after
    /// 4 s; rate limits off, as all test traffic comes from one address), in a fresh directory,
    /// for a store at `url`.
    fn prepare(url: String) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        tessera::keys::MasterKey::create(&dir.path().join("master.key")).unwrap();
        std::fs::write(
            dir.path().join("tessera.toml"),
            "jwks_max_age = 1\n[limits]\nper_address_rps = 0\nper_client_rps = 0\n",
        )
        .unwrap();
        Cluster {
            dir,
            url,
            issuer: "https://auth.cluster.test".into(),
            nodes: Vec::new(),
            http: reqwest::Client::new(),
        }
    }

    async fn node(&self, tag: &str, bootstrap: bool) -> Process {
        let config = self.dir.path().join("tessera.toml").display().to_string();
        let key = self.dir.path().join("master.key").display().to_string();
        let args = [
            "serve",
            "--database",
            &self.url,
            "--config",
            &config,
            "--master-key-file",
            &key,
            "--issuer",
            &self.issuer,
            "--bootstrap",
            if bootstrap { "true" } else { "false" },
        ];
        Process::spawn(self.dir.path(), &args, &[], tag).await
    }

    async fn start(n: usize) -> Option<Cluster> {
        Cluster::start_with(n, "").await
    }

    /// `n` nodes whose config file also holds `extra` (tables after the defaults).
    async fn start_with(n: usize, extra: &str) -> Option<Cluster> {
        pg::require("cluster")?;
        let mut c = Cluster::prepare(pg::fresh_database());
        if !extra.is_empty() {
            let path = c.dir.path().join("tessera.toml");
            let config = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{config}{extra}")).unwrap();
        }
        let (code, _, err) = tessera(c.dir.path(), &c.url, &["migrate"]);
        assert_eq!(code, 0, "{err}");
        for i in 0..n {
            let node = c.node(&format!("node{i}"), false).await;
            c.nodes.push(node);
        }
        Some(c)
    }

    fn cli_client(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["client", "create", "--json"];
        all.extend_from_slice(args);
        let v = tessera_json(self.dir.path(), &self.url, &all);
        (
            v["client"]["client_id"].as_str().unwrap().to_string(),
            v["client_secret"].as_str().unwrap().to_string(),
        )
    }

    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{}", self.nodes[node].base, path)
    }

    async fn token(&self, node: usize, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url(node, "/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }

    async fn access_token(&self, node: usize, id: &str, secret: &str) -> String {
        let r = self.token(node, id, secret).await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn introspect(&self, node: usize, id: &str, secret: &str, token: &str) -> Value {
        let r = self
            .http
            .post(self.url(node, "/oauth2/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn revoke(&self, node: usize, id: &str, secret: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url(node, "/oauth2/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    async fn jwks_kids(&self, node: usize) -> Vec<String> {
        let v: Value = self
            .http
            .get(self.url(node, "/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Token requests sent in a loop by `workers` tasks on each listed node until stopped, with
/// `pause` between a task's requests, counted per node.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<[AtomicUsize; 3]>,
    failed: Arc<[AtomicUsize; 3]>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(c: &Cluster, nodes: &[(usize, usize)], id: &str, secret: &str, pause: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok: Arc<[AtomicUsize; 3]> = Arc::default();
        let failed: Arc<[AtomicUsize; 3]> = Arc::default();
        let mut workers = Vec::new();
        for &(node, count) in nodes {
            for _ in 0..count {
                let url = c.url(node, "/oauth2/token");
                let (id, secret) = (id.to_string(), secret.to_string());
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                workers.push(tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let r = http
                            .post(&url)
                            .basic_auth(&id, Some(&secret))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => ok[node].fetch_add(1, Ordering::Relaxed),
                            _ => failed[node].fetch_add(1, Ordering::Relaxed),
                        };
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                }));
            }
        }
        Traffic {
            stop,
            ok,
            failed,
            workers,
        }
    }

    fn ok(&self) -> [usize; 3] {
        [0, 1, 2].map(|n| self.ok[n].load(Ordering::Relaxed))
    }

    fn failed(&self) -> [usize; 3] {
        [0, 1, 2].map(|n| self.failed[n].load(Ordering::Relaxed))
    }

    /// Stops every worker and waits for it.
    async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            w.await.unwrap();
        }
    }
}

fn kid_of(token: &str) -> String {
    decode_unverified(token).0["kid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_clients_revocations_and_keys() {
    let Some(c) = Cluster::start(3).await else { return };
    let (ops, ops_secret) = c.cli_client(&["--name", "ops", "--admin"]);
    let admin = eventually(BOUND, || async {
        c.token(0, &ops, &ops_secret).await.status() == 200
    })
    .await;
    assert!(admin, "node 1 never saw a client created by the CLI");
    let admin = c.access_token(0, &ops, &ops_secret).await;

    // A client created through node 1's admin API gets a token from node 2.
    let r = c
        .http
        .post(c.url(0, "/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "svc", "scope": "orders:read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let (id, secret) = (
        created["client"]["client_id"].as_str().unwrap().to_string(),
        created["client_secret"].as_str().unwrap().to_string(),
    );
    let t = Instant::now();
    assert!(
        eventually(BOUND, || async {
            let mut all = true;
            for n in 0..3 {
                all &= c.token(n, &id, &secret).await.status() == 200;
            }
            all
        })
        .await,
        "the nodes did not see the new client within {BOUND:?}"
    );
    eprintln!("client created on node 1 reached every node in {:?}", t.elapsed());
    let token = c.access_token(1, &id, &secret).await;

    // Node 3 introspects it.
    let active = c.introspect(2, &id, &secret, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id.as_str());
    assert_eq!(active["iss"], c.issuer.as_str());

    // Revoked on node 1, it is inactive on nodes 2 and 3 within the bound.
    let r = c.revoke(0, &id, &secret, &token).await;
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    let revoked = eventually(BOUND, || async {
        c.introspect(1, &id, &secret, &token).await == json!({"active": false})
            && c.introspect(2, &id, &secret, &token).await == json!({"active": false})
    })
    .await;
    assert!(revoked, "a revocation on node 1 did not reach nodes 2 and 3");
    eprintln!("revocation on node 1 reached nodes 2 and 3 in {:?}", t.elapsed());

    // A key rotated through node 2 is published by nodes 1 and 3, then signs on them.
    let old_kid = kid_of(&c.access_token(0, &id, &secret).await);
    let r = c
        .http
        .post(c.url(1, "/admin/v1/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rotated: Value = r.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    let published = eventually(BOUND, || async {
        c.jwks_kids(0).await.contains(&new_kid) && c.jwks_kids(2).await.contains(&new_kid)
    })
    .await;
    assert!(published, "nodes 1 and 3 did not publish the new key");
    // Published before it signs: until it activates, every node signs with the old key.
    let activates_at = rotated["activates_at"].as_i64().unwrap();
    let kid_now = kid_of(&c.access_token(2, &id, &secret).await);
    if tessera::model::clock::unix_now() < activates_at {
        assert_eq!(kid_now, old_kid, "a key signed before its activation time");
    }
    let activates_in = activates_at - tessera::model::clock::unix_now();
    let signing = eventually(
        Duration::from_secs(activates_in.max(0) as u64) + BOUND,
        || async {
            kid_of(&c.access_token(0, &id, &secret).await) == new_kid
                && kid_of(&c.access_token(2, &id, &secret).await) == new_kid
        },
    )
    .await;
    assert!(signing, "nodes 1 and 3 never signed with the rotated key");
    for node in &c.nodes {
        let log = node.stderr();
        assert!(
            !log.contains(&secret) && !log.contains(&token),
            "a secret or token in a log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_node_leaves_the_others_answering() {
    let Some(mut c) = Cluster::start(3).await else {
        return;
    };
    let (id, secret) = c.cli_client(&["--name", "steady", "--scope", "a"]);
    let seen = eventually(BOUND, || async {
        let mut all = true;
        for n in 0..3 {
            all &= c.token(n, &id, &secret).await.status() == 200;
        }
        all
    })
    .await;
    assert!(seen, "not every node saw the client");

    // Steady traffic: four workers on each node that stays, two on the node that is killed.
    let mut traffic = Traffic::start(&c, &[(0, 2), (1, 4), (2, 4)], &id, &secret, Duration::ZERO);
    let flowing = eventually(BOUND, || async { traffic.ok().iter().all(|&n| n >= 50) }).await;
    assert!(flowing, "traffic did not reach every node: {:?}", traffic.ok());
    c.nodes[0].child.kill().unwrap(); // SIGKILL
    c.nodes[0].child.wait().unwrap();
    let before = traffic.ok();
    // Until the killed node's workers have seen it gone and the others served 200 more each.
    let carried_on = eventually(BOUND, || async {
        let ok = traffic.ok();
        traffic.failed()[0] > 0 && (1..3).all(|n| ok[n] >= before[n] + 200)
    })
    .await;
    traffic.stop().await;
    assert!(
        carried_on,
        "after the kill: ok {:?}, failed {:?}",
        traffic.ok(),
        traffic.failed()
    );
    let (ok, failed) = (traffic.ok(), traffic.failed());
    eprintln!("ok per node {ok:?}, failed per node {failed:?}");
    assert!(ok[0] > 0, "the killed node answered before it died");
    assert!(failed[0] > 0, "the killed node is gone");
    for n in [1, 2] {
        assert_eq!(failed[n], 0, "node {} failed a request", n + 1);
        assert!(ok[n] > before[n], "node {} kept answering after the kill", n + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_together_on_an_empty_database_make_one_key_and_one_quickstart() {
    let Some(_) = pg::require("two nodes starting together") else {
        return;
    };
    let c = Cluster::prepare(pg::fresh_database());
    // No `tessera migrate` first: both nodes find an empty database and race.
    let (a, b) = tokio::join!(c.node("a", true), c.node("b", true));
    let keys = tessera_json(c.dir.path(), &c.url, &["key", "list", "--json"]);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let clients = tessera_json(c.dir.path(), &c.url, &["client", "list", "--json"]);
    assert_eq!(clients.as_array().unwrap().len(), 1, "{clients}");
    let printed = [&a, &b]
        .iter()
        .filter(|p| p.stdout().contains("client_secret:"))
        .count();
    assert_eq!(printed, 1, "exactly one node prints the quickstart client");
    // Both sign with the one key.
    let http = reqwest::Client::new();
    for p in [&a, &b] {
        let jwks: Value = http
            .get(format!("{}/.well-known/jwks.json", p.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["kid"], keys[0]["kid"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_master_key_refuses_to_start() {
    let Some(c) = Cluster::start(1).await else { return };
    let other = c.dir.path().join("other.key");
    tessera::keys::MasterKey::create(&other).unwrap();
    let out = tessera_cmd(c.dir.path())
        .args(["serve", "--database", &c.url, "--listen", "127.0.0.1:0"])
        .args(["--master-key-file", &other.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot open signing key"), "{err}");
    // A missing key file is not created for a store that holds keys, and no key is added.
    let missing = c.dir.path().join("typo.key");
    let out = tessera_cmd(c.dir.path())
        .args(["serve", "--database", &c.url, "--listen", "127.0.0.1:0"])
        .args(["--master-key-file", &missing.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("does not exist"));
    assert!(!missing.exists());
    let keys = tessera_json(c.dir.path(), &c.url, &["key", "list", "--json"]);
    assert_eq!(keys.as_array().unwrap().len(), 1);
}

/// PostgreSQL stops for several seconds under token traffic, then comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_goes_away_and_comes_back() {
    if pg::require("the_database_goes_away_and_comes_back").is_none() {
        return;
    }
    let Some(db) = pg::Private::start("the_database_goes_away_and_comes_back") else {
        return;
    };
    let mut c = Cluster::prepare(db.url());
    let (code, _, err) = tessera(c.dir.path(), &c.url, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let (ops, ops_secret) = c.cli_client(&["--name", "ops", "--admin"]);
    let (id, secret) = c.cli_client(&["--name", "svc", "--scope", "a"]);
    for i in 0..2 {
        let node = c.node(&format!("node{i}"), false).await;
        c.nodes.push(node);
    }
    let admin = c.access_token(0, &ops, &ops_secret).await;
    // Acknowledged before the outage: a revocation.
    let revoked = c.access_token(1, &id, &secret).await;
    let r = c.revoke(1, &id, &secret, &revoked).await;
    assert_eq!(r.status(), 200);

    // Token traffic on both nodes throughout.
    let total = |counts: [usize; 3]| counts.iter().sum::<usize>();
    let mut traffic = Traffic::start(&c, &[(0, 2), (1, 2)], &id, &secret, Duration::from_millis(5));
    let flowing = eventually(BOUND, || async { traffic.ok()[..2].iter().all(|&n| n >= 20) }).await;
    assert!(flowing, "traffic did not reach both nodes: {:?}", traffic.ok());

    db.stop();
    let outage = Instant::now();
    let ok_at_stop = total(traffic.ok());
    // Writes are refused cleanly and fast: 503 with a JSON error, within the pool timeout.
    let t = Instant::now();
    let r = c
        .http
        .post(c.url(0, "/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "during-outage"}))
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert!(took < Duration::from_secs(8), "an admin write waited {took:?}");
    let live = c.access_token(0, &id, &secret).await;
    let r = c.revoke(0, &id, &secret, &live).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    let ready: Value = c
        .http
        .get(c.url(1, "/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["store"].as_str()),
        (Some("ready"), Some("unavailable"))
    );
    // Introspection answers from the caches, revocations included.
    assert_eq!(
        c.introspect(1, &id, &secret, &revoked).await,
        json!({"active": false})
    );
    assert_eq!(c.introspect(1, &id, &secret, &live).await["active"], true);
    // Both nodes go on issuing while the database is away, past several failed polls of it.
    let issued_through = eventually(BOUND, || async {
        outage.elapsed() > tessera::server::CHANGE_POLL * 4
            && traffic.ok()[..2].iter().sum::<usize>() >= ok_at_stop + 200
    })
    .await;
    assert!(
        issued_through,
        "too few tokens issued while the database was away: {} then {:?}",
        ok_at_stop,
        traffic.ok()
    );

    db.restart();
    // The cluster recovers by itself: a write through node 1 succeeds and reaches node 2.
    let recovered = eventually(Duration::from_secs(15), || async {
        c.http
            .post(c.url(0, "/admin/v1/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "after-outage", "scope": "b"}))
            .send()
            .await
            .is_ok_and(|r| r.status() == 201)
    })
    .await;
    assert!(recovered, "admin writes did not recover");
    let clients = tessera_json(c.dir.path(), &c.url, &["client", "list", "--json"]);
    let after = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "after-outage")
        .unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        clients
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "during-outage"),
        "a refused write was applied"
    );
    let seen = eventually(BOUND, || async {
        c.http
            .get(c.url(1, &format!("/admin/v1/clients/{after}")))
            .bearer_auth(&admin)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(seen);
    let r = c.revoke(1, &id, &secret, &live).await;
    assert_eq!(r.status(), 200, "revocation works again");
    traffic.stop().await;
    eprintln!(
        "token requests: {} ok, {} failed, outage and recovery included",
        total(traffic.ok()),
        total(traffic.failed())
    );
    assert_eq!(total(traffic.failed()), 0, "a token request failed");
    // Nothing acknowledged was lost: the revocation from before the outage still holds, in the
    // store as well as in the caches of a node started after it.
    let fresh = c.node("late", false).await;
    c.nodes.push(fresh);
    assert_eq!(
        c.introspect(2, &id, &secret, &revoked).await,
        json!({"active": false})
    );
    assert_eq!(
        c.introspect(2, &id, &secret, &live).await,
        json!({"active": false})
    );
    let ready: Value = c
        .http
        .get(c.url(0, "/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "ok");
}

/// From the embedded default to PostgreSQL: a client keeps its secret, a token signed before the
/// move still verifies after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_sqlite_and_import_into_postgres() {
    let Some(_) = pg::require("export_from_sqlite_and_import_into_postgres") else {
        return;
    };
    let c = Cluster::prepare(pg::fresh_database());
    let d = c.dir.path();
    let sqlite = format!("sqlite:{}/old/tessera.db", d.display());
    let (code, _, err) = tessera(d, &sqlite, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let (id, secret) = {
        let v = tessera_json(
            d,
            &sqlite,
            &["client", "create", "--name", "moving", "--scope", "m", "--json"],
        );
        (
            v["client"]["client_id"].as_str().unwrap().to_string(),
            v["client_secret"].as_str().unwrap().to_string(),
        )
    };
    let imported = {
        let out = tessera_cmd(d)
            .args([
                "client",
                "create",
                "--name",
                "legacy",
                "--secret-stdin",
                "--json",
                "--database",
                &sqlite,
            ])
            .env("TESSERA_MASTER_KEY_FILE", d.join("master.key"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut out = out;
        out.stdin
            .take()
            .unwrap()
            .write_all(b"an old vendor secret\n")
            .unwrap();
        let out = out.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["client"]["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let key = d.join("master.key").display().to_string();
    let issuer = c.issuer.clone();
    let old = Process::spawn(
        d,
        &[
            "serve",
            "--database",
            &sqlite,
            "--master-key-file",
            &key,
            "--issuer",
            &issuer,
            "--bootstrap",
            "false",
        ],
        &[],
        "sqlite",
    )
    .await;
    let http = reqwest::Client::new();
    let token_at = |base: String, id: String, secret: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{base}/oauth2/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, before) = token_at(old.base.clone(), id.clone(), secret.clone()).await;
    assert_eq!(status, 200);
    let before = before["access_token"].as_str().unwrap().to_string();
    drop(old);

    let file = d.join("export.jsonl");
    let (code, _, err) = tessera(d, &sqlite, &["export", "--output", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains("an old vendor secret"),
        "a secret in the export"
    );
    let (code, _, err) = tessera(d, &c.url, &["import", &file.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    // A second import is refused: the target is no longer empty.
    let (code, _, err) = tessera(d, &c.url, &["import", &file.display().to_string()]);
    assert_ne!(code, 0);
    assert!(err.contains("already holds"), "{err}");

    let new = Process::spawn(
        d,
        &[
            "serve",
            "--database",
            &c.url,
            "--master-key-file",
            &key,
            "--issuer",
            &issuer,
            "--bootstrap",
            "false",
        ],
        &[],
        "postgres",
    )
    .await;
    let (status, _) = token_at(new.base.clone(), id.clone(), secret.clone()).await;
    assert_eq!(status, 200, "the generated secret works after the move");
    let (status, _) = token_at(new.base.clone(), imported, "an old vendor secret".into()).await;
    assert_eq!(status, 200, "the imported (Argon2id) secret works after the move");
    let r = http
        .post(format!("{}/oauth2/introspect", new.base))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", before.as_str())])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], true, "a token signed before the move: {body}");
    // And offline, against the new node's JWKS.
    let jwks = format!("{}/.well-known/jwks.json", new.base);
    let claims = crate::kit::verify_as_resource_server(&http, &jwks, &before, &issuer, &issuer)
        .await
        .unwrap();
    assert_eq!(claims["client_id"], id.as_str());
}

/// A client assertion (RFC 7523 §3: `jti` single use) is accepted once by the whole cluster: the
/// node that did not see it first refuses the replay too, and no node logs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_assertion_is_used_once_across_nodes() {
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let key = crate::kit::keys::TestKey::new("ES256", "cluster-1");
    let file = c.dir.path().join("jwks.json");
    std::fs::write(&file, key.jwks().to_string()).unwrap();
    let created = tessera_json(
        c.dir.path(),
        &c.url,
        &[
            "client",
            "create",
            "--json",
            "--name",
            "keyed",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            file.to_str().unwrap(),
        ],
    );
    let id = created["client"]["client_id"].as_str().unwrap().to_string();
    let now = tessera::model::clock::unix_now();
    let assertion = key.jwt(&json!({
        "iss": id, "sub": id, "aud": c.issuer, "iat": now, "exp": now + 60, "jti": "once-only",
    }));
    let post = |node: usize| {
        c.http
            .post(c.url(node, "/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
    };
    // Both nodes know the client (it came through the change log).
    let known = eventually(BOUND, || async {
        let mut ok = true;
        for node in 0..2 {
            let probe = key.jwt(&json!({
                "iss": id, "sub": id, "aud": c.issuer, "iat": now, "exp": now + 60,
                "jti": uuid::Uuid::new_v4().to_string(),
            }));
            let r = c
                .http
                .post(c.url(node, "/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", probe.as_str()),
                ])
                .send()
                .await
                .unwrap();
            ok &= r.status() == 200;
        }
        ok
    })
    .await;
    assert!(known, "a node never learned of the key client");
    assert_eq!(post(0).await.unwrap().status(), 200);
    let replay = post(1).await.unwrap();
    assert_eq!(replay.status(), 401);
    assert_eq!(replay.json::<Value>().await.unwrap()["error"], "invalid_client");
    assert_eq!(post(0).await.unwrap().status(), 401);
    for node in &c.nodes {
        assert!(!node.stderr().contains(&assertion[..60]), "an assertion in a log");
    }
}

/// DPoP across nodes: a nonce one node issued is taken by another (both derive it from the
/// shared master key), and a proof used at one node is refused at the other (its `jti` is in
/// the shared store).
#[tokio::test]
async fn dpop_nonces_and_proof_replay_span_the_cluster() {
    let Some(c) = Cluster::start_with(2, "[dpop]\nrequire_nonce = true\n").await else {
        return;
    };
    let (id, secret) = c.cli_client(&["--name", "bound", "--dpop-bound-tokens"]);
    let key = crate::kit::keys::TestKey::new("ES256", "dpop");
    // The proofs name the issuer's URL, not the node's address (nodes sit behind a balancer).
    let htu = format!("{}/oauth2/token", c.issuer);
    let post = |node: usize, proof: Option<String>| {
        let mut req = c
            .http
            .post(c.url(node, "/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send()
    };
    // Both nodes know the client (through the change log): without a proof, DPoP is asked for.
    let known = eventually(BOUND, || async {
        let mut ok = true;
        for node in 0..2 {
            let r = post(node, None).await.unwrap();
            ok &= r.status() == 400
                && r.json::<Value>().await.unwrap()["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("DPoP"));
        }
        ok
    })
    .await;
    assert!(known, "a node never learned of the client");
    let now = || tessera::model::clock::unix_now();
    let first = post(0, Some(key.dpop("POST", &htu, now(), json!({}))))
        .await
        .unwrap();
    assert_eq!(first.status(), 400);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert_eq!(first.json::<Value>().await.unwrap()["error"], "use_dpop_nonce");
    let proof = key.dpop("POST", &htu, now(), json!({"nonce": nonce}));
    let r = post(1, Some(proof.clone())).await.unwrap();
    assert_eq!(r.status(), 200, "node 1 takes node 0's nonce");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let replay = post(0, Some(proof.clone())).await.unwrap();
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    for node in &c.nodes {
        assert!(!node.stderr().contains(&proof[..60]), "a proof in a log");
        assert!(!node.stdout().contains(&proof[..60]), "a proof in a log");
    }
}

/// RFC 8628 on two nodes: a device polls one node while the person answers through the other,
/// and the pace of polls is the cluster's, not a node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_polls_one_node_while_a_person_answers_through_another() {
    use crate::device::{DEVICE, answer, path_of};
    let Some(c) = Cluster::start(2).await else {
        return;
    };
    let mut create = tessera_cmd(c.dir.path())
        .args([
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--password",
            "--json",
        ])
        .args(["--database", &c.url])
        .env("TESSERA_MASTER_KEY_FILE", c.dir.path().join("master.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = create.stdin.take().unwrap();
        writeln!(stdin, "{}", crate::oidc::PASSWORD).unwrap();
    }
    let out = create.wait_with_output().unwrap();
    assert!(out.status.success());
    let sub = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, secret) = c.cli_client(&[
        "--name",
        "tv",
        "--scope",
        "orders:read",
        "--grant-type",
        DEVICE,
        "--grant-type",
        "refresh_token",
    ]);
    let start = |node: usize| {
        let req = c
            .http
            .post(c.url(node, "/oauth2/device_authorization"))
            .basic_auth(&id, Some(&secret))
            .form(&[("scope", "orders:read")]);
        async move { req.send().await.unwrap() }
    };
    let poll = |node: usize, code: String| {
        let req = c
            .http
            .post(c.url(node, "/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", DEVICE), ("device_code", code.as_str())]);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Both nodes know the client.
    for node in 0..2 {
        assert!(eventually(BOUND, || async { start(node).await.status() == 200 }).await);
    }
    // Pace: polled on one node, then at once on the other, is too fast.
    let paced: Value = start(0).await.json().await.unwrap();
    let paced_code = paced["device_code"].as_str().unwrap().to_string();
    assert_eq!(
        poll(0, paced_code.clone()).await.1["error"],
        "authorization_pending"
    );
    assert_eq!(poll(1, paced_code).await.1["error"], "slow_down");

    // Started and polled on node 0, answered on node 1.
    let d: Value = start(0).await.json().await.unwrap();
    let code = d["device_code"].as_str().unwrap().to_string();
    assert_eq!(poll(0, code.clone()).await.1["error"], "authorization_pending");
    let mut b = crate::oidc::Browser::new();
    let (_, done) = answer(
        &mut b,
        &c.nodes[1].base,
        &path_of(d["verification_uri_complete"].as_str().unwrap()),
        d["user_code"].as_str().unwrap(),
        "ada@example.com",
        "allow",
    )
    .await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    // The device waits its interval (5 s), then polls node 0.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, tokens) = poll(0, code.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, claims) = decode_unverified(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["iss"], c.issuer);
    // Spent, on every node.
    let (status, again) = poll(1, code).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
}
