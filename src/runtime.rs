//! The async runtime, built only by the commands that need it (start-up stays fast), with the
//! stop request (`shutdown`) listening from the start.

use std::future::Future;

use crate::error::{Error, Result};
use crate::shutdown::{self, Shutdown, Signal};

/// Runs a command's future on a fresh multi-threaded runtime. The command gets the stop request
/// (SIGINT, SIGTERM or SIGHUP) and decides what a safe point is; a second one ends it at once.
pub fn run<T, F, Fut>(command: F) -> Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    run_with(true, command)
}

/// `run` for a command that handles SIGHUP itself (the fan-out relay reloads its routes on it):
/// `hangup` false leaves SIGHUP out of the stop request.
pub fn run_with<T, F, Fut>(hangup: bool, command: F) -> Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    block_on(hangup, None, command, |signal| Err(forced(signal)))
}

/// `run_with` for a server (`sandbox`, `fanout`), which SIGTERM (and, where `clean` lists it,
/// SIGHUP) is meant to end: a second stop request after one of `clean` still ends it at once,
/// but as the stop it was asked for, with `stopped` (exit 0); after Ctrl-C it is exit 130.
pub fn serve<T, F, Fut>(hangup: bool, clean: &[Signal], stopped: T, command: F) -> Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    serve_on(None, hangup, clean, stopped, command)
}

/// `serve` on `workers` async worker threads (`None`: one per core, tokio's default). One is
/// tokio's current-thread scheduler on the calling thread: no work-stealing queues to check
/// and no second thread for the main future; for the fan-out relay on 2 cores that was 4-5 %
/// more events/s at concurrency 1 and 61-63 µs of CPU per event instead of 64-65
/// (`cargo bench --bench fanout`).
pub fn serve_on<T, F, Fut>(
    workers: Option<usize>,
    hangup: bool,
    clean: &[Signal],
    stopped: T,
    command: F,
) -> Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    block_on(hangup, workers, command, |signal| {
        if clean.contains(&signal) {
            Ok(stopped)
        } else {
            Err(forced(signal))
        }
    })
}

fn forced(signal: Signal) -> Error {
    shutdown::interrupted(signal, Some("asked twice: stopped at once"))
}

/// Runs `command` on a fresh runtime with the stop request listening; at a second stop request
/// it ends at once with what `at_second` makes of the first one's signal.
fn block_on<T, F, Fut>(
    hangup: bool,
    workers: Option<usize>,
    command: F,
    at_second: impl FnOnce(Signal) -> Result<T>,
) -> Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut builder = match workers {
        Some(n) if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = workers.filter(|&n| n > 1) {
        builder.worker_threads(n);
    }
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| Error::external(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let stop = Shutdown::listen(hangup)?;
        tokio::select! {
            result = command(stop.clone()) => result,
            signal = stop.forced() => at_second(signal),
        }
    })
}
