//! `--state FILE`: the app's state, and the Stripe side's account and webhook endpoints, on disk. Writes are atomic (temporary file, fsync, rename,
//! mode 0600) and grouped: a handler that changed the state waits until a write that includes
//! its change has finished, so an acknowledged credit survives a crash, while a burst of
//! changes costs one write.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::Shared;
use super::state::Store;
use super::stripe::SavedStripe;
use crate::error::{Error, Result};

const FORMAT: &str = "stripe-ops.sandbox-state";

#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    kind: String,
    version: u32,
    store: Store,
    /// Absent from files written before the Stripe side was kept.
    #[serde(default)]
    stripe: Option<SavedStripe>,
}

/// Reads the state file; a missing file is a fresh state.
pub fn load(path: &Path) -> Result<(Store, Option<SavedStripe>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Store::default(), None)),
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot read state file {}: {e}",
                path.display()
            )));
        }
    };
    let disk: OnDisk = serde_json::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "state file {} is not a sandbox state: {e}",
            path.display()
        ))
    })?;
    if disk.kind != FORMAT {
        return Err(Error::usage(format!(
            "state file {} is not a sandbox state (kind {:?})",
            path.display(),
            disk.kind
        )));
    }
    Ok((disk.store, disk.stripe))
}

fn snapshot(store: &Store, stripe: &SavedStripe) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Borrowed<'a> {
        kind: &'a str,
        version: u32,
        store: &'a Store,
        stripe: &'a SavedStripe,
    }
    serde_json::to_vec(&Borrowed {
        kind: FORMAT,
        version: 1,
        store,
        stripe,
    })
    .expect("the state always serializes")
}

#[derive(Clone)]
pub struct Persister {
    path: PathBuf,
    changed: Arc<Notify>,
    written: watch::Sender<u64>,
}

impl Persister {
    pub fn new(path: PathBuf, loaded_version: u64) -> Self {
        Self {
            path,
            changed: Arc::new(Notify::new()),
            written: watch::Sender::new(loaded_version),
        }
    }

    /// Returns once the state as of `version` is on disk.
    pub async fn wait_for(&self, version: u64) {
        if *self.written.borrow() >= version {
            return;
        }
        let mut rx = self.written.subscribe();
        self.changed.notify_one();
        let _ = rx.wait_for(|w| *w >= version).await;
    }

    /// Asks for a write without waiting for it.
    pub fn nudge(&self) {
        self.changed.notify_one();
    }

    /// The writer: waits for a change, snapshots under the lock, writes outside it.
    pub async fn run(self, shared: Arc<Shared>) {
        loop {
            self.changed.notified().await;
            let (version, bytes) = {
                let store = shared.store();
                if store.version <= *self.written.borrow() {
                    continue;
                }
                (store.version, snapshot(&store, &shared.stripe.save()))
            };
            let path = self.path.clone();
            let result =
                tokio::task::spawn_blocking(move || crate::secret::write_private(&path, &bytes))
                    .await;
            match result {
                Ok(Ok(())) => {
                    self.written.send_replace(version);
                }
                Ok(Err(e)) => {
                    shared.out.warn(format!(
                        "cannot write state file {}: {e}",
                        self.path.display()
                    ));
                    // Unblock waiters rather than hang them; the next change retries.
                    self.written.send_replace(version);
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_round_trips_and_refuses_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(
            load(&path).unwrap().0.org_for_token("x").is_none(),
            "missing file: fresh state"
        );
        let mut store = Store::default();
        let (token, _) = store.register("Acme", "a@example.com", "pw").unwrap();
        let stripe = SavedStripe {
            events: Vec::new(),
            destinations: Vec::new(),
            account_id: "acct_1".into(),
            endpoints: Vec::new(),
        };
        crate::secret::write_private(&path, &snapshot(&store, &stripe)).unwrap();
        let (store, stripe) = load(&path).unwrap();
        assert!(store.org_for_token(&token).is_some());
        assert_eq!(stripe.unwrap().account_id, "acct_1");
        // A file from before the Stripe side was kept.
        let mut old: serde_json::Value =
            serde_json::from_slice(&snapshot(&Store::default(), &SavedStripe::default())).unwrap();
        old.as_object_mut().unwrap().remove("stripe");
        std::fs::write(&path, old.to_string()).unwrap();
        assert!(load(&path).unwrap().1.is_none());
        std::fs::write(&path, r#"{"kind":"other","version":1,"store":{}}"#).unwrap();
        let e = load(&path).expect_err("foreign kind refused");
        assert_eq!(e.exit, crate::error::Exit::Usage);
        std::fs::write(&path, "[]").unwrap();
        assert!(load(&path).is_err());
    }
}
