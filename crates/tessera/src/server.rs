//! Starting a node: open the store, make sure a signing key exists, bootstrap a first client on a
//! fresh store, warm the caches, keep them fresh, and serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{NewClient, build_client};
use crate::app::App;
use crate::clients::Registry;
use crate::config::Settings;
use crate::http::discovery::{TOKEN_PATH, metadata};
use crate::keys::{KeyRing, MasterKey};
use crate::model::KeyPurpose;
use crate::model::clock::{Clock, SystemClock};
use crate::operation::Actor;
use crate::signing::{ensure_first_key, load_key_set, rotate_if_due};
use crate::store::Store;

/// How often a node asks the store what changed.
pub const CHANGE_POLL: Duration = Duration::from_millis(500);
/// How often a node reloads everything, as a backstop: the change log (with gap detection) keeps
/// caches exact, and a full reload of a million clients is not free.
pub const FULL_REFRESH: Duration = Duration::from_secs(3600);
/// Meta key recording that the quickstart client was created once.
const BOOTSTRAP_META: &str = "bootstrap.quickstart";

/// A running node.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Shared state.
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Turns unready, waits `shutdown_delay`, then stops accepting, lets requests in flight
    /// finish (at most [`crate::http::DRAIN_TIMEOUT`]) and stops background work.
    pub async fn shutdown(self) {
        self.app.readiness.drain();
        tokio::time::sleep(self.app.settings.shutdown_delay).await;
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.app.store.close().await;
    }
}

impl Running {
    /// The node's base URL (`http://ADDR`, or `https://ADDR` with TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.app.settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

/// What the first start of a fresh store prints: the quickstart client and how to use it.
pub struct Quickstart {
    /// Client id.
    pub client_id: String,
    /// Client secret (shown once).
    pub client_secret: String,
}

/// Creates the quickstart client on a store that never had one.
async fn bootstrap(store: &Store, at: i64) -> anyhow::Result<Option<Quickstart>> {
    if store.meta(BOOTSTRAP_META).await?.is_some() || !store.clients().await?.is_empty() {
        return Ok(None);
    }
    let created = build_client(
        NewClient {
            name: "quickstart".into(),
            scope: "demo:read demo:write".into(),
            ..Default::default()
        },
        at,
    )?;
    let audit = Actor::server().entry(
        "client.create",
        &created.client.id,
        serde_json::json!({"name": "quickstart"}),
    );
    if !store
        .insert_client(&created.client, Some(BOOTSTRAP_META), &audit)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(Quickstart {
        client_id: created.client.id.clone(),
        client_secret: created.secret,
    }))
}

fn print_quickstart(q: &Quickstart, settings: &Settings) {
    let url = settings.endpoint(TOKEN_PATH);
    println!(
        "\nTessera created a first client, \"quickstart\" (scopes: demo:read demo:write).\n\
         \n  client_id:     {id}\n  client_secret: {secret}\n\
         \nThe secret is shown this once: Tessera stores only a hash of it. Fetch a token:\n\
         \n  curl -s -u '{id}:{secret}' -d grant_type=client_credentials {url}\n",
        id = q.client_id,
        secret = q.client_secret,
    );
}

/// Starts a node and returns once it is listening.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    start_with_listener(settings, None).await
}

/// Starts a node on an already bound listener (or binds `settings.listen` when `None`).
pub async fn start_with_listener(
    settings: Settings,
    listener: Option<std::net::TcpListener>,
) -> anyhow::Result<Running> {
    start_with_clock(settings, listener, Arc::new(SystemClock)).await
}

/// [`start_with_listener`], on `clock`: everything the node decides by time (token lifetimes,
/// secret expiry, back-off windows, sign-in lifetimes, its schedules) reads it, so a test can
/// move a [`crate::model::clock::ManualClock`] instead of waiting.
pub async fn start_with_clock(
    settings: Settings,
    listener: Option<std::net::TcpListener>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    // TLS files first: a bad certificate is reported before anything else happens.
    let tls = match &settings.tls {
        Some(files) => {
            Some(crate::http::tls::acceptor(files, settings.mtls.is_some()).map_err(|e| anyhow::anyhow!(e))?)
        }
        None => None,
    };
    let store = Store::open(&settings.database, true).await?;
    let master = crate::signing::master_key(&settings.master_key, &store).await?;
    ensure_first_key(
        &store,
        &master,
        settings.signing_alg,
        KeyPurpose::Access,
        clock.now(),
    )
    .await?;
    store
        .raise_meta(
            crate::signing::JWKS_MAX_AGE_META,
            settings.jwks_max_age.as_secs() as i64,
        )
        .await?;
    // The change sequence is read before anything is loaded, so nothing changed in between is
    // missed: at worst it is applied twice.
    let seq = store.change_seq().await?;
    let key_set = load_key_set(&store, &master, clock.now()).await?;
    if settings.bootstrap {
        if let Some(q) = bootstrap(&store, clock.now()).await? {
            print_quickstart(&q, &settings);
        }
    }
    let registry = Registry::with_clock(clock.clone());
    load_registry(&store, &registry).await?;
    let revocations = crate::revocations::Revocations::default();
    revocations.replace(load_revocations(&store).await?);
    let trust = crate::trust::TrustPolicies::default();
    trust.replace(store.trust_policies().await?);
    let listener = match listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)?
        }
        None => crate::http::bind(settings.listen).await?,
    };
    let addr = listener.local_addr()?;
    let settings_limits = settings.limits.clone();
    let settings_register_rate = settings.registration.per_address_per_hour;
    let remote_keys = crate::client_keys::RemoteKeys::new(&settings.outbound, clock.clone())
        .map_err(|e| anyhow::anyhow!(e))?;
    let dpop_nonces = crate::oauth::dpop::nonces(
        master.state_secrets().first().map_or(&[][..], |s| &s[..]),
        settings.dpop.nonce_lifetime,
    );
    let used_once = crate::replay::Ledger::start(store.clone());
    let documents =
        crate::client_documents::Documents::new(&settings.outbound).map_err(|e| anyhow::anyhow!(e))?;
    let app = Arc::new(App {
        trust,
        remote_keys,
        documents,
        metadata: metadata(&settings),
        settings,
        store,
        registry,
        keys: KeyRing::new(key_set),
        revocations,
        verified: crate::oauth::validate::verified_tokens(),
        master,
        synced: Default::default(),
        guard: crate::limits::Guard::with_clock(settings_limits, clock.clone()),
        metrics: crate::metrics::Metrics::new(),
        readiness: Default::default(),
        registry_writes: Default::default(),
        dpop_nonces,
        used_once,
        clock,
        register_rate: crate::http::register::rate(settings_register_rate),
    });
    app.synced.mark(app.clock.now());
    let (shutdown, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if app.settings.limits.trusts_any_proxy() {
        tracing::warn!(
            "limits.trusted_proxies holds a catch-all network (allowed by limits.allow_any_proxy): \
             every peer may name its own address in the proxy header, for rate limits, back-off and the audit trail"
        );
    }
    let acceptor = match tls {
        Some((acceptor, resolver)) => {
            tasks.push(tokio::spawn(crate::http::tls::reload_loop(resolver, rx.clone())));
            Some(acceptor)
        }
        None => {
            if !addr.ip().is_loopback() {
                tracing::warn!(%addr, "serving plain HTTP on a non-loopback address: TLS must be terminated in front of Tessera");
            }
            None
        }
    };
    tasks.push(tokio::spawn(crate::http::serve(
        listener,
        crate::http::router(app.clone()),
        crate::http::Timeouts {
            header: app.settings.request_timeout,
            idle: app.settings.idle_timeout,
        },
        acceptor,
        rx.clone(),
    )));
    if let (true, Some(console)) = (app.settings.console.enabled, app.settings.console.listen) {
        let listener = crate::http::bind(console).await?;
        let at = listener.local_addr()?;
        if !at.ip().is_loopback() {
            tracing::warn!(%at, "the console listens on a non-loopback address over plain HTTP: terminate TLS in front of it");
        }
        tracing::info!(%at, "console listening");
        tasks.push(tokio::spawn(crate::http::serve(
            listener,
            crate::http::console_router(app.clone()),
            crate::http::Timeouts {
                header: app.settings.request_timeout,
                idle: app.settings.idle_timeout,
            },
            None,
            rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(refresh_loop(app.clone(), seq, rx.clone())));
    tasks.push(tokio::spawn(schedule_loop(app.clone(), rx)));
    tracing::info!(%addr, issuer = %app.settings.issuer, clients = app.registry.len(), "tessera listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        tasks,
    })
}

/// The longest one poll of the change log (with the reloads it triggers) may take before it is
/// abandoned and retried: a database that stops answering without closing the connection must
/// not stall a node's view of the store.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps the caches fresh: polls the change log, reloads what changed, and now and then reloads
/// everything. Also rebuilds the key set when a key activates or retires. Scheduled work that
/// writes (rotation, pruning) runs in [`schedule_loop`], so that it never delays a poll.
async fn refresh_loop(app: Arc<App>, mut seq: i64, mut shutdown: watch::Receiver<bool>) {
    let master = &app.master;

    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_full = app.clock.instant() + FULL_REFRESH;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if app.clock.instant() >= next_full {
            next_full = match full_refresh(&app, master, &mut seq).await {
                Ok(()) => {
                    app.synced.mark(app.clock.now());
                    app.clock.instant() + FULL_REFRESH
                }
                Err(e) => {
                    tracing::warn!(error = %e, "full cache refresh failed; serving from cache");
                    app.clock.instant() + Duration::from_secs(30)
                }
            };
        } else {
            match tokio::time::timeout(POLL_TIMEOUT, apply_changes(&app, master, &mut seq)).await {
                Ok(Ok(())) => app.synced.mark(app.clock.now()),
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the change log failed; serving from cache"),
                Err(_) => tracing::warn!("reading the change log timed out; serving from cache"),
            }
        }
        // A pending key activates, or an old one retires, without any store change.
        if app
            .keys
            .get()
            .next_change_at
            .is_some_and(|t| t <= app.clock.now())
        {
            match load_key_set(&app.store, master, app.clock.now()).await {
                Ok(set) => {
                    let kid = set
                        .current(app.clock.now())
                        .map(|s| s.signer.kid().to_string())
                        .unwrap_or_default();
                    tracing::info!(%kid, "signing key set changed on schedule");
                    app.keys.replace(set);
                    app.readiness.keys(None);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot rebuild the key set");
                    app.readiness
                        .keys(Some(format!("cannot rebuild the signing key set: {e}")));
                }
            }
        }
    }
}

/// Scheduled work that writes to the store: key rotation when due (every node checks, the
/// store's write lock lets one rotate) and pruning of expired state.
async fn schedule_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_housekeeping = app.clock.instant();
    let mut next_rotation_check = app.clock.instant();
    let mut next_id_key_check = app.clock.instant();
    let server_actor = Actor::server().on(app.clock.clone());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Some(interval) = app.settings.key_rotation_interval {
            if app.clock.instant() >= next_rotation_check {
                next_rotation_check =
                    app.clock.instant() + (interval / 2).clamp(CHANGE_POLL, Duration::from_secs(5));
                let s = &app.settings;
                for (alg, purpose) in [
                    (s.signing_alg, KeyPurpose::Access),
                    (crate::signing::ID_TOKEN_ALG, KeyPurpose::IdToken),
                ] {
                    if let Err(e) = rotate_if_due(
                        &app.store,
                        &app.master,
                        &server_actor,
                        (alg, purpose),
                        interval,
                        s.jwks_max_age,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, purpose = purpose.as_str(), "scheduled key rotation failed");
                    }
                }
            }
        }
        // The first client that signs people in brings the ID token key (RS256), ahead of its
        // first code exchange (which would make it then). A scan of the registry, so not often.
        if app.clock.instant() >= next_id_key_check {
            next_id_key_check = app.clock.instant() + Duration::from_secs(10);
            if app.keys.get().id_slots.is_empty() && app.registry.any_signs_in() {
                if let Err(e) =
                    crate::signing::ensure_id_key(&app.store, &app.master, &app.keys, app.clock.now()).await
                {
                    tracing::warn!(error = %e, "cannot create the ID token signing key");
                }
            }
        }
        if app.clock.instant() >= next_housekeeping {
            next_housekeeping = app.clock.instant() + HOUSEKEEPING;
            housekeeping(&app).await;
        }
    }
}

/// How often a node prunes expired state.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

async fn housekeeping(app: &App) {
    app.revocations.prune(app.clock.now());
    app.guard.prune();
    let results = [
        app.store.prune_changes(Duration::from_secs(86_400)).await,
        app.store.prune_revocations().await,
        app.store.prune_retired_keys(Duration::from_secs(86_400)).await,
        app.store.prune_sign_in().await,
        app.store.prune_assertions().await,
    ];
    for r in results {
        if let Err(e) = r {
            tracing::warn!(error = %e, "pruning expired state failed");
        }
    }
    if app.settings.registration.any() {
        let actor = crate::operation::Actor::server().on(app.clock.clone());
        match crate::admin::registration::prune(&app.store, &actor, &app.settings.registration).await {
            Ok(pruned) => {
                for id in &pruned {
                    app.apply_client(id).await;
                }
                if !pruned.is_empty() {
                    tracing::info!(
                        clients = pruned.len(),
                        "deleted self-registered clients that were never used"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "pruning unused registrations failed"),
        }
    }
}

/// Loads every client into the registry, streaming, and swaps the new map in whole.
async fn load_registry(store: &Store, registry: &Registry) -> anyhow::Result<()> {
    let mut map = crate::clients::ClientMap::default();
    store
        .for_each_client(|r| registry.insert_into(&mut map, r))
        .await?;
    map.shrink_to_fit();
    registry.replace_map(map);
    Ok(())
}

/// Loads every unexpired revocation, streaming.
async fn load_revocations(store: &Store) -> anyhow::Result<crate::revocations::RevokedSet> {
    let mut set = crate::revocations::RevokedSet::default();
    store.for_each_revoked(|jti, exp| set.insert(jti, exp)).await?;
    Ok(set)
}

async fn full_refresh(app: &App, master: &MasterKey, seq: &mut i64) -> anyhow::Result<()> {
    // Read the sequence first: a change that lands during the reload is then applied again by
    // the next poll rather than missed.
    let new_seq = app.store.change_seq().await?;
    {
        let _turn = app.registry_writes.lock().await;
        load_registry(&app.store, &app.registry).await?;
    }
    let keys = rebuild_keys(app, master).await?;
    let revoked = load_revocations(&app.store).await?;
    app.trust.replace(app.store.trust_policies().await?);
    app.keys.replace(keys);
    app.revocations.replace(revoked);
    *seq = new_seq;
    Ok(())
}

/// Builds the key set from the store. A key this node cannot open (sealed under another master
/// key) makes the node unready until it can: it goes on signing with the set it has.
async fn rebuild_keys(app: &App, master: &MasterKey) -> anyhow::Result<crate::keys::KeySet> {
    match load_key_set(&app.store, master, app.clock.now()).await {
        Ok(set) => {
            app.readiness.keys(None);
            Ok(set)
        }
        Err(e) => {
            if e.downcast_ref::<crate::store::StoreError>().is_none() {
                app.readiness
                    .keys(Some(format!("cannot open the store's signing keys: {e}")));
            }
            Err(e)
        }
    }
}

async fn apply_changes(app: &App, master: &MasterKey, seq: &mut i64) -> anyhow::Result<()> {
    let batch = app.store.changes_since(*seq).await?;
    if batch.gap {
        // The change log was pruned past what this node has seen: reload everything.
        tracing::warn!("change log pruned past this node's position; reloading everything");
        return full_refresh(app, master, seq).await;
    }
    let turn = app.registry_writes.lock().await;
    for id in &batch.clients {
        match app.store.client(id).await {
            Ok(record) => app.registry.upsert(id, record),
            Err(e) => {
                // Fail closed: the log says this client changed (it may just have been disabled),
                // so the entry this node holds is not served. The cursor stays where it was, and
                // the next poll reads the batch again and brings the client back.
                app.registry.upsert(id, None);
                return Err(e.into());
            }
        }
    }
    drop(turn);
    if !batch.revocations.is_empty() {
        app.revocations
            .extend(app.store.revoked_tokens(&batch.revocations).await?);
    }
    if batch.trust {
        app.trust.replace(app.store.trust_policies().await?);
    }
    if batch.keys {
        // On failure the sequence stays where it was, so the key change is retried next poll.
        let keys = rebuild_keys(app, master).await?;
        app.keys.replace(keys);
    }
    if !batch.clients.is_empty() || batch.keys || batch.trust || !batch.revocations.is_empty() {
        tracing::info!(
            clients = batch.clients.len(),
            keys = batch.keys,
            trust_policies = batch.trust,
            revocations = batch.revocations.len(),
            "applied store changes"
        );
    }
    *seq = batch.seq;
    Ok(())
}
