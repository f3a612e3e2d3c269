//! `--state FILE`: the app's state, and the Stripe side's account and webhook endpoints, on disk.
//! Writes are atomic (temporary file, fsync, rename, mode 0600) and grouped: a handler that
//! changed the state waits until a write that includes its change has finished, so an
//! acknowledged credit survives a crash, while a burst of changes costs one write. A write that
//! fails fails the handlers that waited for it (they answer 503, never acknowledge). Changes
//! nobody waits for (delivery attempts) are debounced: at most one write per `DEBOUNCE`, so a
//! flood of them never costs a whole-state write per request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::Shared;
use super::state::Store;
use super::stripe::SavedStripe;
use crate::error::{Error, Result};

const FORMAT: &str = "stripe-ops.sandbox-state";
/// How long a change nobody waits for may sit before it is written.
const DEBOUNCE: Duration = Duration::from_millis(500);

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

/// What the writer has done: the version on disk, and the last write that failed.
#[derive(Clone, Default)]
struct Progress {
    written: u64,
    /// The version a failed write tried to put on disk, and why it failed.
    failed: Option<(u64, String)>,
}

#[derive(Clone)]
pub struct Persister {
    path: PathBuf,
    /// A handler waits: write at once.
    urgent: Arc<Notify>,
    /// A background change: write within `DEBOUNCE`.
    changed: Arc<Notify>,
    progress: watch::Sender<Progress>,
}

impl Persister {
    pub fn new(path: PathBuf, loaded_version: u64) -> Self {
        Self {
            path,
            urgent: Arc::new(Notify::new()),
            changed: Arc::new(Notify::new()),
            progress: watch::Sender::new(Progress {
                written: loaded_version,
                failed: None,
            }),
        }
    }

    /// Returns once the state as of `version` is on disk, or why the write that should have
    /// put it there failed.
    pub async fn wait_for(&self, version: u64) -> std::result::Result<(), String> {
        let mut rx = self.progress.subscribe();
        if rx.borrow().written < version {
            self.urgent.notify_one();
        }
        let settled = rx
            .wait_for(|p| {
                p.written >= version || p.failed.as_ref().is_some_and(|(v, _)| *v >= version)
            })
            .await;
        match settled {
            Ok(p) if p.written >= version => Ok(()),
            Ok(p) => Err(p.failed.clone().map(|(_, why)| why).unwrap_or_default()),
            Err(_) => Err("the state writer stopped".into()),
        }
    }

    /// Asks for a write without waiting for it.
    pub fn nudge(&self) {
        self.changed.notify_one();
    }

    /// The writer: waits for a change, snapshots under the lock, writes outside it.
    pub async fn run(self, shared: Arc<Shared>) {
        loop {
            tokio::select! {
                _ = self.urgent.notified() => {}
                _ = self.changed.notified() => {
                    // Debounced; a handler that starts waiting meanwhile cuts it short.
                    tokio::select! {
                        _ = tokio::time::sleep(DEBOUNCE) => {}
                        _ = self.urgent.notified() => {}
                    }
                }
            }
            let (version, bytes) = {
                let store = shared.store();
                if store.version <= self.progress.borrow().written {
                    continue;
                }
                (store.version, snapshot(&store, &shared.stripe.save()))
            };
            let path = self.path.clone();
            let result =
                tokio::task::spawn_blocking(move || crate::secret::write_private(&path, &bytes))
                    .await;
            match result {
                Ok(Ok(())) => self.progress.send_modify(|p| p.written = version),
                Ok(Err(e)) => {
                    let why = format!("cannot write state file {}: {e}", self.path.display());
                    shared.out.warn(why.clone());
                    // The waiters fail (503); the next change tries again.
                    self.progress
                        .send_modify(|p| p.failed = Some((version, why)));
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
