//! The async runtime, built only by commands that need it (start-up stays fast), and Ctrl-C:
//! exit 130, after printing whatever hint the running command registered (for example the
//! `--verify-only` command that resumes a real-checkout smoke).

use std::future::Future;
use std::sync::Mutex;

use crate::error::{Error, Result};

static INTERRUPT_HINT: Mutex<Option<String>> = Mutex::new(None);

/// Registers what to tell the user if they press Ctrl-C from now on (`None` clears it).
pub fn on_interrupt(hint: Option<String>) {
    *INTERRUPT_HINT.lock().unwrap_or_else(|e| e.into_inner()) = hint;
}

fn interrupted() -> Error {
    let hint = INTERRUPT_HINT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match hint {
        Some(h) => Error::interrupted(format!("interrupted; {h}")),
        None => Error::interrupted("interrupted"),
    }
}

/// Runs a command's future to completion on a fresh multi-threaded runtime; Ctrl-C ends it.
pub fn block_on<F>(fut: F) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::external(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        tokio::select! {
            result = fut => result,
            _ = tokio::signal::ctrl_c() => Err(interrupted()),
        }
    })
}

/// Like `block_on`, for a command that handles Ctrl-C itself (a server that shuts down
/// gracefully and then returns `Error::interrupted`).
pub fn block_on_handling_ctrl_c<F>(fut: F) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::external(format!("cannot start the async runtime: {e}")))?
        .block_on(fut)
}
