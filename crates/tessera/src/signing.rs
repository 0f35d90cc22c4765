//! The life of signing keys: the first key, rotation (manual and scheduled), and the key set a
//! node builds from the store.
//!
//! Rotation never breaks a token: a new key is published at least one JWKS cache lifetime before
//! it signs anything, so every verifier has it by the time a token carries its `kid`; the keys it
//! replaces stay published until every token they could have signed has expired (the longest
//! client token lifetime after the new key takes over, plus one cache lifetime), then retire.

use std::sync::Arc;
use std::time::Duration;

use crate::keys::{self, Alg, KeyRing, KeySet, MasterKey, MasterKeySource, Signer, Slot};
use crate::model::MAX_TOKEN_TTL;
use crate::model::{KeyPurpose, KeyRecord};
use crate::operation::Actor;
use crate::store::Store;

/// The node's master key, checked against the store: it must open every signing key the store
/// holds, or the node refuses to start (one line saying so) rather than sign with a key of its
/// own. A key file is created only where the source allows it (an SQLite store) and only while
/// the store holds no signing key.
pub async fn master_key(source: &MasterKeySource, store: &Store) -> anyhow::Result<MasterKey> {
    const MAKE_ONE: &str = "create one with `head -c 32 /dev/urandom | base64 > master.key`";
    let keys = store.all_keys().await?;
    let master = match source {
        MasterKeySource::Value { base64, source } => MasterKey::from_base64(base64).ok_or_else(|| {
            anyhow::anyhow!("the master key from {source} must be 32 bytes, base64-encoded")
        })?,
        MasterKeySource::File { path, .. } if path.exists() => MasterKey::load(path)?,
        MasterKeySource::File { path, create: true } if keys.is_empty() => MasterKey::create(path)?,
        MasterKeySource::File { path, .. } if keys.is_empty() => anyhow::bail!(
            "master key file {} does not exist; every node of a shared store must be given the same \
             master key ({MAKE_ONE})",
            path.display()
        ),
        MasterKeySource::File { path, .. } => anyhow::bail!(
            "master key file {} does not exist, and the store's signing keys are sealed under another \
             key: give this node the master key the other nodes use (--master-key-file or TESSERA_MASTER_KEY)",
            path.display()
        ),
        MasterKeySource::Missing => anyhow::bail!(
            "a PostgreSQL store needs the master key every node shares: set TESSERA_MASTER_KEY or \
             --master-key-file ({MAKE_ONE})"
        ),
    };
    if let Some(k) = keys
        .iter()
        .find(|k| master.open(&k.kid, &k.sealed_private_key).is_err())
    {
        anyhow::bail!(
            "the master key ({source:?}) cannot open signing key {}: every node must use the master key \
             the store's signing keys were sealed with",
            k.kid
        );
    }
    Ok(master)
}

/// Builds the key set published and used at time `at`.
pub async fn load_key_set(store: &Store, master: &MasterKey, at: i64) -> anyhow::Result<KeySet> {
    let records = store.live_keys(at).await?;
    let mut jwks = Vec::with_capacity(records.len());
    let mut next_change_at: Option<i64> = None;
    let mut soonest = |t: i64| {
        if t > at && next_change_at.is_none_or(|n| t < n) {
            next_change_at = Some(t);
        }
    };
    let mut slots = Vec::with_capacity(records.len());
    let mut id_slots = Vec::new();
    for r in &records {
        let jwk: serde_json::Value = serde_json::from_str(&r.public_jwk)?;
        jwks.push(jwk);
        soonest(r.activates_at);
        if let Some(t) = r.retired_at {
            soonest(t);
        }
        let alg: Alg = r.alg.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let pkcs8 = master.open(&r.kid, &r.sealed_private_key)?;
        let (typ, list) = match r.purpose {
            KeyPurpose::Access => (tessera_proto::ACCESS_TOKEN_TYP, &mut slots),
            KeyPurpose::IdToken => ("JWT", &mut id_slots),
        };
        list.push(Slot {
            activates_at: r.activates_at,
            retire_at: r.retired_at,
            signer: Arc::new(Signer::with_typ(&r.kid, alg, &pkcs8, typ)?),
        });
    }
    use tessera_verify::Algorithm as A;
    let verifiers = tessera_verify::jws::KeyRing::from_jwks(
        &serde_json::json!({ "keys": &jwks }),
        &[A::ES256, A::RS256, A::EdDSA],
    );
    // Records come ordered by activation, then creation: the last active one signs.
    let set = KeySet {
        slots,
        id_slots,
        jwks_json: keys::jwks_json(&jwks).into(),
        verifiers,
        next_change_at,
    };
    if set.current(at).is_none() {
        anyhow::bail!("no active signing key");
    }
    Ok(set)
}

/// A new key sealed under the store's sealing master key; also returns that key's id as the
/// store named it (`None`: no master key rotation yet), for the store to check at insertion.
async fn new_record(
    store: &Store,
    master: &MasterKey,
    alg: Alg,
    purpose: KeyPurpose,
    (created_at, activates_at): (i64, i64),
) -> anyhow::Result<(KeyRecord, Option<String>)> {
    let sealing = store.meta(crate::store::SEALING_KEY_META).await?;
    let generated = tokio::task::spawn_blocking(move || keys::generate(alg)).await??;
    let record = KeyRecord {
        kid: generated.kid.clone(),
        alg: alg.as_str().to_string(),
        sealed_private_key: master.seal_with(sealing.as_deref(), &generated.kid, &generated.pkcs8)?,
        public_jwk: generated.public_jwk.to_string(),
        created_at,
        activates_at,
        retired_at: None,
        purpose,
    };
    Ok((record, sealing))
}

/// The algorithm of ID tokens: RS256, the one OpenID Connect requires every provider to offer.
pub const ID_TOKEN_ALG: Alg = Alg::RS256;

/// Creates the first signing key for `purpose` if the store has none at `at`; returns whether it
/// did.
pub async fn ensure_first_key(
    store: &Store,
    master: &MasterKey,
    alg: Alg,
    purpose: KeyPurpose,
    at: i64,
) -> anyhow::Result<bool> {
    if store.live_keys(at).await?.iter().any(|k| k.purpose == purpose) {
        return Ok(false);
    }
    let (record, _) = new_record(store, master, alg, purpose, (at, at)).await?;
    let audit = Actor::server().entry(
        "key.create",
        &record.kid,
        serde_json::json!({"alg": alg.as_str(), "purpose": purpose.as_str()}),
    );
    let created = store.insert_first_key(&record, &audit).await?;
    if created {
        tracing::info!(kid = %record.kid, alg = alg.as_str(), purpose = purpose.as_str(), "created signing key");
    }
    Ok(created)
}

/// Makes sure the node can sign ID tokens: creates the RS256 ID token key if the store has none
/// (of nodes racing, one does), and rebuilds the node's key set at once rather than at the next
/// poll. `at` is now, by the node's clock.
pub async fn ensure_id_key(store: &Store, master: &MasterKey, keys: &KeyRing, at: i64) -> anyhow::Result<()> {
    if !keys.get().id_slots.is_empty() {
        return Ok(());
    }
    ensure_first_key(store, master, ID_TOKEN_ALG, KeyPurpose::IdToken, at).await?;
    keys.replace(load_key_set(store, master, at).await?);
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new key.
    pub kid: String,
    /// Its algorithm.
    pub alg: Alg,
    /// When it starts signing.
    pub activates_at: i64,
    /// When the keys it replaces leave the JWKS.
    pub previous_retire_at: i64,
}

/// The JWKS cache lifetime rotation must respect: the largest any node of this store serves.
async fn shared_max_age(store: &Store, own: Duration) -> anyhow::Result<i64> {
    let recorded = store
        .meta(JWKS_MAX_AGE_META)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    Ok(recorded.max(own.as_secs() as i64))
}

/// Meta key holding the largest JWKS cache lifetime any node of the store has served.
pub const JWKS_MAX_AGE_META: &str = "jwks.max_age";

/// Rotates the signing key. The new key is published at once and signs from two JWKS cache
/// lifetimes (a shared cache may hold a copy for one, its client for another) plus two seconds
/// (polling and rounding) later; the cache lifetime is the largest any node of this store uses.
/// The keys it replaces retire after the longest token lifetime plus that lead. Times are taken
/// inside the store's write transaction. With `unless_replaced` (kid and creation time of the
/// newest key the caller saw), nothing happens if another node rotated first.
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    actor: &Actor,
    alg: Alg,
    purpose: KeyPurpose,
    jwks_max_age: Duration,
    unless_replaced: Option<(&str, i64)>,
) -> anyhow::Result<Option<Rotation>> {
    let lead = 2 * shared_max_age(store, jwks_max_age).await? + 2;
    let (mut record, sealed_under) = new_record(store, master, alg, purpose, (actor.now(), 0)).await?;
    let longest = store.max_token_ttl().await?.clamp(0, i64::from(MAX_TOKEN_TTL));
    let audit = actor.entry(
        "key.rotate",
        &record.kid,
        serde_json::json!({"alg": alg.as_str(), "purpose": purpose.as_str(), "lead_seconds": lead}),
    );
    let Some(retire_at) = store
        .rotate_key(
            &mut record,
            lead,
            longest + lead,
            unless_replaced,
            sealed_under.as_deref(),
            &audit,
        )
        .await?
    else {
        return Ok(None);
    };
    tracing::info!(kid = %record.kid, alg = alg.as_str(), activates_at = record.activates_at, "rotated signing key");
    Ok(Some(Rotation {
        kid: record.kid,
        alg,
        activates_at: record.activates_at,
        previous_retire_at: retire_at,
    }))
}

/// Rotates the keys of `purpose` when the newest is older than `interval` by `actor`'s clock
/// (scheduled rotation). Safe to call from every node: only one of them rotates. Does nothing
/// for a purpose that has no key yet.
pub async fn rotate_if_due(
    store: &Store,
    master: &MasterKey,
    actor: &Actor,
    (alg, purpose): (Alg, KeyPurpose),
    interval: Duration,
    jwks_max_age: Duration,
) -> anyhow::Result<Option<Rotation>> {
    let keys = store.all_keys().await?;
    let newest = keys
        .iter()
        .filter(|k| k.purpose == purpose)
        .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
    if newest.is_none() && purpose != KeyPurpose::Access {
        return Ok(None);
    }
    let (kid, created_at) = newest.map(|k| (k.kid.as_str(), k.created_at)).unwrap_or(("", 0));
    if actor.now() < created_at + interval.as_secs() as i64 {
        return Ok(None);
    }
    // Every node checks; the store's write lock lets exactly one of them rotate.
    rotate(
        store,
        master,
        actor,
        alg,
        purpose,
        jwks_max_age,
        Some((kid, created_at)),
    )
    .await
}

/// Seals every stored signing key again under `new` (its first key) and makes it the store's
/// sealing key, in one transaction. Nodes given both the old and the new master key go on
/// without a pause; a node given only the old one turns unready (and keeps signing) until it is
/// given the new one. Refused unless `current` opens every stored key. Returns how many keys
/// were sealed again.
pub async fn rotate_master(
    store: &Store,
    current: &MasterKey,
    new: &MasterKey,
    actor: &Actor,
) -> anyhow::Result<usize> {
    let new_id = new.ids().first().map(|s| s.to_string()).unwrap_or_default();
    let mut sealed = Vec::new();
    for k in store.all_keys().await? {
        let pkcs8 = current.open(&k.kid, &k.sealed_private_key)?;
        sealed.push((k.kid.clone(), new.seal(&k.kid, &pkcs8)?));
    }
    let audit = actor.entry(
        "master_key.rotate",
        &new_id,
        serde_json::json!({"keys": sealed.len()}),
    );
    store
        .reseal_keys(&sealed, crate::store::SEALING_KEY_META, &new_id, &audit)
        .await?;
    tracing::info!(master_key = %new_id, keys = sealed.len(), "signing keys sealed under a new master key");
    Ok(sealed.len())
}
