//! The spool's cursor files (`cursors/<target>`: the highest sequence number the target is done
//! with, with all below it, as 20 digits and a newline), written by one background thread.
//!
//! A delivery only records the newest value in memory: the thread writes each target's newest
//! value at most every `COALESCE`, in place, to a file it keeps open, without fsync. A write to a
//! file can wait behind the journal while events are fsync'd, and a delivery must not; and a
//! cursor that is a little behind after a crash (or a power cut) only means delivering a few
//! events again, which webhook receivers must tolerate anyway (Stripe does it too). Creating
//! and removing a cursor, and flushing them all, are done in order and waited for.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long updates are gathered before they are written: at most this much progress is
/// forgotten by a crash, and a busy target costs one write per `COALESCE`, not one per event.
/// At 20 ms, events 38 ms apart woke the thread for each one; at 100 ms its CPU fell from
/// 10.3-10.8 to 5.0 ms in 7 s (26 events a second, `perf stat --per-thread`, two runs each).
pub const COALESCE: Duration = Duration::from_millis(100);

type Done = std::sync::mpsc::SyncSender<io::Result<()>>;

enum Op {
    Create(String, u64, Done),
    Remove(String, Done),
    Flush(Done),
}

#[derive(Default)]
struct State {
    /// The newest value of each target not written yet.
    newest: HashMap<String, u64>,
    /// Operations that are answered, in the order they were asked.
    ops: Vec<Op>,
    /// Set when the spool closes: the thread writes what is left and ends.
    closing: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle of the thread that writes the cursor files.
pub struct CursorWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for CursorWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorWriter").finish_non_exhaustive()
    }
}

impl CursorWriter {
    pub fn start(dir: PathBuf, logger: super::Log) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fanout-cursors".into())
            .spawn(move || run(&dir, &theirs, &logger))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Records that `target` is done through `seq` (written within `COALESCE`).
    pub fn set(&self, target: &str, seq: u64) {
        let mut state = self.shared.lock();
        let was_idle = state.newest.is_empty() && state.ops.is_empty();
        match state.newest.get_mut(target) {
            Some(v) => *v = seq,
            None => {
                state.newest.insert(target.to_owned(), seq);
            }
        }
        if was_idle {
            self.shared.wake.notify_one();
        }
    }

    pub fn create(&self, target: &str, seq: u64) -> io::Result<()> {
        self.call(|done| Op::Create(target.to_owned(), seq, done))
    }

    /// Forgets a pending update of `target` and deletes its file.
    pub fn remove(&self, target: &str) -> io::Result<()> {
        self.call(|done| Op::Remove(target.to_owned(), done))
    }

    /// Returns once every update recorded so far is written.
    pub fn flush(&self) -> io::Result<()> {
        self.call(Op::Flush)
    }

    fn call(&self, op: impl FnOnce(Done) -> Op) -> io::Result<()> {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        {
            let mut state = self.shared.lock();
            let op = op(done);
            if let Op::Remove(target, _) = &op {
                state.newest.remove(target);
            }
            state.ops.push(op);
        }
        self.shared.wake.notify_one();
        answer
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the cursor writer stopped")))
    }
}

impl Drop for CursorWriter {
    /// Writes what is left, and waits for the thread to end.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(dir: &Path, shared: &Shared, logger: &super::Log) {
    let mut files: HashMap<String, File> = HashMap::new();
    let mut state = shared.lock();
    loop {
        while state.newest.is_empty() && state.ops.is_empty() && !state.closing {
            state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        // Updates alone wait a moment for more; an operation someone waits for does not.
        let deadline = Instant::now() + COALESCE;
        while state.ops.is_empty() && !state.closing {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let newest = std::mem::take(&mut state.newest);
        let ops = std::mem::take(&mut state.ops);
        let closing = state.closing;
        drop(state);
        for (target, seq) in newest {
            if let Err(e) = set_cursor(dir, &mut files, &target, seq) {
                logger.line(format!("spool: cannot save the cursor of {target}: {e}"));
            }
        }
        for op in ops {
            match op {
                Op::Create(target, seq, done) => {
                    let _ = done.send(create_cursor(dir, &mut files, &target, seq));
                }
                Op::Remove(target, done) => {
                    files.remove(&target);
                    let _ = done.send(remove_if_present(&dir.join(target)));
                }
                Op::Flush(done) => {
                    let _ = done.send(Ok(()));
                }
            }
        }
        if closing {
            return;
        }
        state = shared.lock();
    }
}

/// One fixed-width write in place (replacing the file by a rename costs milliseconds on ext4,
/// which flushes on rename-over), to the file kept open since the first one.
fn set_cursor(
    dir: &Path,
    files: &mut HashMap<String, File>,
    target: &str,
    seq: u64,
) -> io::Result<()> {
    let file = match files.get(target) {
        Some(f) => f,
        None => {
            let f = super::spool::private_options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(target))?;
            files.entry(target.to_owned()).or_insert(f)
        }
    };
    write_at_start(file, format!("{seq:020}\n").as_bytes())
}

fn create_cursor(
    dir: &Path,
    files: &mut HashMap<String, File>,
    target: &str,
    seq: u64,
) -> io::Result<()> {
    set_cursor(dir, files, target, seq)?;
    files[target].sync_all()?;
    File::open(dir)?.sync_all()
}

pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn write_at_start(file: &File, bytes: &[u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(not(unix))]
fn write_at_start(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    use std::io::{Seek, Write};
    file.seek(io::SeekFrom::Start(0))?;
    file.write_all(bytes)
}
