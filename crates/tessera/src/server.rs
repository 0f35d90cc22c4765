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
use crate::http::discovery::{Metadata, TOKEN_PATH};
use crate::keys::{self, KeyRing, KeySet, MasterKey, Signer};
use crate::store::{KeyRecord, Store, now};

/// How often a node asks the store what changed.
pub const CHANGE_POLL: Duration = Duration::from_millis(500);
/// How often a node reloads everything, as a backstop for missed changes.
pub const FULL_REFRESH: Duration = Duration::from_secs(300);
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
    /// Stops accepting, drains connections and stops background work.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.app.store.close().await;
    }
}

/// What the first start of a fresh store prints: the quickstart client and how to use it.
pub struct Quickstart {
    /// Client id.
    pub client_id: String,
    /// Client secret (shown once).
    pub client_secret: String,
}

/// Loads the live keys, decrypts them and builds the key set.
async fn load_keys(store: &Store, master: &MasterKey) -> anyhow::Result<KeySet> {
    let records = store.live_keys().await?;
    let t = now();
    let mut jwks = Vec::with_capacity(records.len());
    let mut current: Option<(&KeyRecord, Signer)> = None;
    for r in &records {
        jwks.push(serde_json::from_str::<serde_json::Value>(&r.public_jwk)?);
        // The newest key that is already active signs.
        if r.activates_at <= t
            && current
                .as_ref()
                .is_none_or(|(c, _)| c.activates_at <= r.activates_at)
        {
            let alg = r.alg.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let pkcs8 = master.open(&r.kid, &r.sealed_private_key)?;
            current = Some((r, Signer::new(&r.kid, alg, &pkcs8)?));
        }
    }
    let (_, signer) = current.ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
    Ok(KeySet {
        current: Arc::new(signer),
        jwks_json: keys::jwks_json(&jwks).into(),
    })
}

/// Creates the first signing key if the store has none.
async fn ensure_key(store: &Store, master: &MasterKey, settings: &Settings) -> anyhow::Result<()> {
    if !store.live_keys().await?.is_empty() {
        return Ok(());
    }
    let alg = settings.signing_alg;
    let generated = tokio::task::spawn_blocking(move || keys::generate(alg)).await??;
    let t = now();
    let record = KeyRecord {
        kid: generated.kid.clone(),
        alg: alg.as_str().to_string(),
        sealed_private_key: master.seal(&generated.kid, &generated.pkcs8)?,
        public_jwk: generated.public_jwk.to_string(),
        created_at: t,
        activates_at: t,
        retired_at: None,
    };
    if store.insert_key(&record, true).await? {
        tracing::info!(kid = %record.kid, alg = alg.as_str(), "created signing key");
    }
    Ok(())
}

/// Creates the quickstart client on a store that never had one.
async fn bootstrap(store: &Store) -> anyhow::Result<Option<Quickstart>> {
    if store.meta(BOOTSTRAP_META).await?.is_some() || !store.clients().await?.is_empty() {
        return Ok(None);
    }
    let created = build_client(NewClient {
        name: "quickstart".into(),
        scope: "demo:read demo:write".into(),
        ..Default::default()
    })?;
    if !store.insert_client(&created.client, Some(BOOTSTRAP_META)).await? {
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
    let store = Store::open(&settings.database, true).await?;
    let master = MasterKey::load_or_create(&settings.master_key_file)?;
    ensure_key(&store, &master, &settings).await?;
    // The change sequence is read before anything is loaded, so nothing changed in between is
    // missed: at worst it is applied twice.
    let seq = store.change_seq().await?;
    let key_set = load_keys(&store, &master).await?;
    if settings.bootstrap {
        if let Some(q) = bootstrap(&store).await? {
            print_quickstart(&q, &settings);
        }
    }
    let registry = Registry::new();
    registry.replace_all(store.clients().await?);
    let listener = match listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)?
        }
        None => crate::http::bind(settings.listen).await?,
    };
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        metadata: Metadata::new(&settings),
        settings,
        store,
        registry,
        keys: KeyRing::new(key_set),
    });
    let (shutdown, rx) = watch::channel(false);
    let server = tokio::spawn(crate::http::serve(
        listener,
        crate::http::router(app.clone()),
        app.settings.request_timeout,
        rx.clone(),
    ));
    let refresher = tokio::spawn(refresh_loop(app.clone(), master, seq, rx));
    tracing::info!(%addr, issuer = %app.settings.issuer, clients = app.registry.len(), "tessera listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        tasks: vec![server, refresher],
    })
}

/// Keeps the caches fresh: polls the change log, reloads what changed, and now and then reloads
/// everything.
async fn refresh_loop(app: Arc<App>, master: MasterKey, mut seq: i64, mut shutdown: watch::Receiver<bool>) {
    use tokio::time::Instant;
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_full = Instant::now() + FULL_REFRESH;
    let mut next_prune = Instant::now() + Duration::from_secs(3600);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if Instant::now() >= next_full {
            next_full = match full_refresh(&app, &master, &mut seq).await {
                Ok(()) => Instant::now() + FULL_REFRESH,
                Err(e) => {
                    tracing::warn!(error = %e, "full cache refresh failed; serving from cache");
                    Instant::now() + Duration::from_secs(30)
                }
            };
        } else if let Err(e) = apply_changes(&app, &master, &mut seq).await {
            tracing::warn!(error = %e, "reading the change log failed; serving from cache");
        }
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + Duration::from_secs(3600);
            if let Err(e) = app.store.prune_changes(Duration::from_secs(86_400)).await {
                tracing::warn!(error = %e, "pruning the change log failed");
            }
        }
    }
}

async fn full_refresh(app: &App, master: &MasterKey, seq: &mut i64) -> anyhow::Result<()> {
    // Read the sequence first: a change that lands during the reload is then applied again by
    // the next poll rather than missed.
    let new_seq = app.store.change_seq().await?;
    let clients = app.store.clients().await?;
    let keys = load_keys(&app.store, master).await?;
    app.registry.replace_all(clients);
    app.keys.replace(keys);
    *seq = new_seq;
    Ok(())
}

async fn apply_changes(app: &App, master: &MasterKey, seq: &mut i64) -> anyhow::Result<()> {
    let batch = app.store.changes_since(*seq).await?;
    for id in &batch.clients {
        match app.store.client(id).await {
            Ok(record) => app.registry.upsert(id, record),
            Err(e) => {
                // Fail closed: a client we cannot read is not served from a stale entry (it may
                // just have been disabled). The next full refresh brings it back.
                tracing::warn!(client_id = %id, error = %e, "cannot reload client; dropping it from the cache");
                app.registry.upsert(id, None);
            }
        }
    }
    if batch.keys {
        match load_keys(&app.store, master).await {
            Ok(keys) => app.keys.replace(keys),
            Err(e) => tracing::warn!(error = %e, "cannot reload signing keys; keeping the current ones"),
        }
    }
    if !batch.clients.is_empty() || batch.keys {
        tracing::info!(
            clients = batch.clients.len(),
            keys = batch.keys,
            "applied store changes"
        );
    }
    *seq = batch.seq;
    Ok(())
}
