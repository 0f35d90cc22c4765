//! The node's writer of single-use ids (client assertions' and DPoP proofs' `jti`s) into the
//! shared store, so that every node refuses a second use.
//!
//! One task per node writes them: it takes whatever has queued while the previous write ran
//! (up to [`MAX_BATCH`]) and records it with one statement (`Store::use_assertions`). Alone, an
//! id costs one statement as before; under load, one statement serves many requests (group
//! commit), which is what lets DPoP proofs and `private_key_jwt` assertions be checked at the
//! token endpoint without one store round trip each.

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;

/// Most ids written by one statement.
pub const MAX_BATCH: usize = 256;
/// Ids waiting beyond this make their requests wait to queue (back-pressure).
const QUEUE: usize = 4096;

struct Entry {
    id: String,
    until: i64,
    at: i64,
    reply: oneshot::Sender<Option<bool>>,
}

/// The handle requests record ids through.
pub struct Ledger {
    queue: mpsc::Sender<Entry>,
}

impl Ledger {
    /// Starts the writer for `store` (on the current runtime); it stops when the ledger is
    /// dropped.
    pub fn start(store: Store) -> Ledger {
        let (queue, mut waiting) = mpsc::channel::<Entry>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write(&store, &mut batch).await;
            }
        });
        Ledger { queue }
    }

    /// Records the id whose SHA-256 is `digest` as used until `until` (at the node's time
    /// `at`): `Some(true)` the first time, `Some(false)` when it was used already and is still
    /// live, `None` when the store could not say (the caller refuses: never guess).
    pub async fn record(&self, digest: [u8; 32], until: i64, at: i64) -> Option<bool> {
        let id = hex(&digest);
        let (reply, answer) = oneshot::channel();
        self.queue.send(Entry { id, until, at, reply }).await.ok()?;
        answer.await.ok().flatten()
    }
}

/// `bytes` in lower-case hex, as the store keys single-use ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

async fn write(store: &Store, batch: &mut Vec<Entry>) {
    let ids: Vec<(String, i64)> = batch.iter().map(|e| (e.id.clone(), e.until)).collect();
    // The earliest clock reading of the batch: an expired record is taken over only when it
    // expired for every request in it.
    let at = batch.iter().map(|e| e.at).min().unwrap_or_default();
    let outcome = match store.use_assertions(&ids, at).await {
        Ok(won) if won.len() == batch.len() => Some(won),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, ids = batch.len(), "cannot record used assertions or proofs; refusing them");
            None
        }
    };
    for (i, entry) in batch.drain(..).enumerate() {
        let _ = entry.reply.send(outcome.as_ref().map(|won| won[i]));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_lower_case_hex() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
