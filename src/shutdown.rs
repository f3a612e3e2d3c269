//! The one stop request of every long-running command: Ctrl-C (SIGINT), SIGTERM (how CI systems
//! cancel a job) or SIGHUP (a closed terminal or SSH session). They mean the same thing: stop at
//! a safe point, clean up (children, browsers) and say what was done. A second one while
//! stopping stops at once. The fan-out relay keeps SIGHUP for reloading its routes.
//!
//! The exit-code rule (README "Exit codes"): a job stopped before it finished exits 130. A
//! server (`sandbox`, `fanout`) has nothing to finish: SIGTERM is how it is meant to end (exit
//! 0, no error), Ctrl-C gives 130 as everywhere else.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// Which signal asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// How many stop requests arrived, and the first one's signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Requests {
    first: Option<Signal>,
    count: u32,
}

/// A handle on the stop request; cheap to clone, shared by everything a command runs.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Requests>,
    tx: Arc<watch::Sender<Requests>>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.requested())
            .finish()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::manual()
    }
}

impl Shutdown {
    /// A stop request that only `request` triggers (library callers and tests).
    pub fn manual() -> Shutdown {
        let (tx, rx) = watch::channel(Requests::default());
        Shutdown {
            rx,
            tx: Arc::new(tx),
        }
    }

    /// Listens for SIGINT and SIGTERM (and SIGHUP when `hangup` says so) from now on; needs a
    /// running tokio runtime. Installed before a command prints anything, so a signal is never
    /// met by the default action (which would skip every clean-up).
    pub fn listen(hangup: bool) -> Result<Shutdown> {
        let shutdown = Shutdown::manual();
        let trigger = shutdown.clone();
        let mut signals = Signals::install(hangup)?;
        tokio::spawn(async move {
            loop {
                let signal = signals.next().await;
                trigger.request(signal);
            }
        });
        Ok(shutdown)
    }

    /// Records a stop request, as a signal would.
    pub fn request(&self, signal: Signal) {
        self.tx.send_modify(|r| {
            r.first.get_or_insert(signal);
            r.count += 1;
        });
    }

    /// The first stop request's signal, if one arrived.
    pub fn requested(&self) -> Option<Signal> {
        self.rx.borrow().first
    }

    /// Resolves when a stop is requested.
    pub async fn wait(&self) -> Signal {
        self.wait_for(1).await
    }

    /// Resolves at the second stop request: the user insists.
    pub async fn forced(&self) -> Signal {
        self.wait_for(2).await
    }

    async fn wait_for(&self, count: u32) -> Signal {
        let mut rx = self.rx.clone();
        let first = rx.wait_for(|r| r.count >= count).await.map(|r| r.first);
        match first {
            Ok(first) => first.unwrap_or(Signal::Interrupt),
            // The sender lives in `self`, so it cannot be gone.
            Err(_) => std::future::pending().await,
        }
    }

    /// Runs `fut` unless a stop is requested first, which ends it with exit 130.
    pub async fn guard<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.guard_with(None, fut).await
    }

    /// Like `guard`, telling the user `hint` (what is left and how to go on) when stopped.
    pub async fn guard_with<T>(
        &self,
        hint: Option<&str>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            r = fut => r,
            s = self.wait() => Err(interrupted(s, hint)),
        }
    }
}

/// The error of a job stopped by `signal`, with what to do next when there is something.
pub fn interrupted(signal: Signal, hint: Option<&str>) -> Error {
    let mut text = format!("interrupted ({})", signal.name());
    if let Some(h) = hint {
        text.push_str("; ");
        text.push_str(h);
    }
    Error::interrupted(text)
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn install(hangup: bool) -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind, name| {
            signal(kind).map_err(|e| Error::external(format!("cannot handle {name}: {e}")))
        };
        Ok(Self {
            int: install(SignalKind::interrupt(), "SIGINT")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            hup: if hangup {
                Some(install(SignalKind::hangup(), "SIGHUP")?)
            } else {
                None
            },
        })
    }

    async fn next(&mut self) -> Signal {
        let hup = async {
            match &mut self.hup {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => Signal::Interrupt,
            _ = self.term.recv() => Signal::Terminate,
            _ = hup => Signal::Hangup,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install(_hangup: bool) -> Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_request_is_remembered_and_the_second_forces() {
        let s = Shutdown::manual();
        assert_eq!(s.requested(), None);
        s.request(Signal::Terminate);
        assert_eq!(s.wait().await, Signal::Terminate);
        let forced = tokio::time::timeout(std::time::Duration::from_millis(20), s.forced()).await;
        assert!(forced.is_err(), "one request does not force");
        s.request(Signal::Interrupt);
        assert_eq!(s.forced().await, Signal::Terminate);
    }

    #[tokio::test]
    async fn guard_ends_a_job_with_130() {
        let s = Shutdown::manual();
        s.request(Signal::Interrupt);
        let e = s
            .guard(std::future::pending::<Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(e.exit.code(), 130);
        assert_eq!(e.message(), "interrupted (Ctrl-C)");
    }
}
