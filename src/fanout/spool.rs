//! The on-disk spool: one file per received event, and one cursor per target.
//!
//! Layout of `DIR`:
//! - `events/<seq>.evt`: a JSON line of metadata (`seq`, `id`, `received_ms`, `content_type`,
//!   `signature`, `len`), then the exact body bytes, in one write; then the file and the folder
//!   are fsync'd: after `write` returns the event survives a crash of the process or of the
//!   machine. A file cut short (no complete metadata line, or fewer body bytes than `len`) was
//!   never acknowledged, because the answer waits for `write`; it is discarded on recovery.
//! - `cursors/<target>`: the highest sequence number the target is done with (delivered or
//!   given up) with everything below it, as 20 digits and a newline. Updates are written in
//!   place, not fsync'd, by one background thread that keeps only the newest value per target:
//!   a write to a file can wait behind the journal while events are fsync'd, and a delivery
//!   must not. Losing an update (crash, power cut) only means delivering again, which webhook
//!   receivers must tolerate anyway (Stripe does it too).
//!
//! An event is removed once every target's cursor has passed it. Sequence numbers continue
//! after a restart from the highest number found in events and cursors, so they never repeat.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};

/// One received event, as spooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub id: Option<String>,
    pub received_ms: i64,
    pub content_type: Option<String>,
    pub signature: Option<String>,
    pub body: Bytes,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    seq: u64,
    id: Option<String>,
    received_ms: i64,
    content_type: Option<String>,
    signature: Option<String>,
    len: usize,
}

/// What a spool held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Spooled events, in sequence order.
    pub events: Vec<Arc<Event>>,
    pub cursors: BTreeMap<String, u64>,
    /// Files that could not be read back (reported, then set aside as `*.bad`).
    pub unreadable: Vec<String>,
    /// Files cut short by a crash while they were written (never acknowledged; removed).
    pub discarded: Vec<String>,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    events: PathBuf,
    events_dir: DirSync,
    cursor_writer: CursorWriter,
    /// Held (an exclusive lock on `DIR/lock`) while the spool is open: two relays on one spool
    /// would deliver everything twice and reuse sequence numbers.
    _lock: File,
    fsync: bool,
    next_seq: AtomicU64,
}

impl Spool {
    /// Opens (creating) a spool folder and reads back what it holds. `fsync: false` keeps events
    /// safe from a crash of the process (kill -9) but not from a crash of the machine.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<(Spool, Recovered)> {
        let events = dir.join("events");
        let cursors = dir.join("cursors");
        fs::create_dir_all(&events)?;
        fs::create_dir_all(&cursors)?;
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))?;
        lock.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                "it is in use by another fanout process",
            ),
            fs::TryLockError::Error(e) => e,
        })?;
        let recovered = Recovered {
            cursors: read_cursors(&cursors)?,
            ..read_events(&events)?
        };
        let highest = recovered
            .events
            .iter()
            .map(|e| e.seq)
            .chain(recovered.cursors.values().copied())
            .max()
            .unwrap_or(0);
        let spool = Spool {
            dir: dir.to_owned(),
            events_dir: DirSync::new(File::open(&events)?),
            cursor_writer: CursorWriter::start(cursors)?,
            _lock: lock,
            events,
            fsync,
            next_seq: AtomicU64::new(highest + 1),
        };
        Ok((spool, recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reserves the next sequence number (the order of arrival).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// The highest sequence number handed out so far (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst) - 1
    }

    fn event_path(&self, seq: u64) -> PathBuf {
        self.events.join(format!("{seq:020}.evt"))
    }

    /// Writes an event durably (see the module comment). Blocking: call from a blocking thread.
    pub fn write(&self, event: &Event) -> io::Result<()> {
        let meta = Meta {
            seq: event.seq,
            id: event.id.clone(),
            received_ms: event.received_ms,
            content_type: event.content_type.clone(),
            signature: event.signature.clone(),
            len: event.body.len(),
        };
        let mut bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        bytes.push(b'\n');
        bytes.extend_from_slice(&event.body);
        let path = self.event_path(event.seq);
        let written = create_private(&path).and_then(|mut file| {
            file.write_all(&bytes)?;
            if self.fsync {
                file.sync_data()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        if self.fsync {
            self.events_dir.sync()?;
        }
        Ok(())
    }

    /// Removes a delivered event (a missing file is fine: removal is idempotent).
    pub fn remove(&self, seq: u64) -> io::Result<()> {
        remove_if_present(&self.event_path(seq))
    }

    /// Records that `target` is done with everything up to `seq`, without waiting for the disk
    /// (see the module comment).
    pub fn write_cursor(&self, target: &str, seq: u64) {
        self.cursor_writer
            .send(CursorOp::Set(target.to_owned(), seq));
    }

    /// Creates the cursor of a target seen for the first time, durably: it starts at the newest
    /// event, so a new target receives what arrives from now on.
    pub fn create_cursor(&self, target: &str) -> io::Result<u64> {
        let seq = self.last_seq();
        self.cursor_writer
            .call(|done| CursorOp::Create(target.to_owned(), seq, done))?;
        Ok(seq)
    }

    /// Forgets a target that was removed from the configuration.
    pub fn remove_cursor(&self, target: &str) -> io::Result<()> {
        self.cursor_writer
            .call(|done| CursorOp::Remove(target.to_owned(), done))
    }

    /// Returns once every cursor update made so far is written.
    pub fn flush_cursors(&self) -> io::Result<()> {
        self.cursor_writer.call(CursorOp::Flush)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.flush_cursors();
    }
}

type Done = std::sync::mpsc::SyncSender<io::Result<()>>;

enum CursorOp {
    Set(String, u64),
    Create(String, u64, Done),
    Remove(String, Done),
    Flush(Done),
}

/// The thread that writes cursor files, in the order the operations were sent; runs of updates
/// are coalesced to the newest value per target.
#[derive(Debug)]
struct CursorWriter {
    ops: std::sync::Mutex<std::sync::mpsc::Sender<CursorOp>>,
}

impl CursorWriter {
    fn start(dir: PathBuf) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fanout-cursors".into())
            .spawn(move || write_cursors(&dir, rx))?;
        Ok(Self {
            ops: std::sync::Mutex::new(tx),
        })
    }

    fn send(&self, op: CursorOp) {
        let _ = self.ops.lock().unwrap_or_else(|e| e.into_inner()).send(op);
    }

    /// Sends an operation that answers, and waits for the answer.
    fn call(&self, op: impl FnOnce(Done) -> CursorOp) -> io::Result<()> {
        let (done, answer) = std::sync::mpsc::sync_channel(1);
        self.send(op(done));
        answer
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the cursor writer stopped")))
    }
}

fn write_cursors(dir: &Path, ops: std::sync::mpsc::Receiver<CursorOp>) {
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    let write_newest = |newest: &mut BTreeMap<String, u64>| {
        for (target, seq) in std::mem::take(newest) {
            if let Err(e) = set_cursor(dir, &target, seq) {
                super::log(format!("spool: cannot save the cursor of {target}: {e}"));
            }
        }
    };
    while let Ok(first) = ops.recv() {
        let mut next = Some(first);
        while let Some(op) = next.take().or_else(|| ops.try_recv().ok()) {
            match op {
                CursorOp::Set(target, seq) => {
                    newest.insert(target, seq);
                }
                CursorOp::Create(target, seq, done) => {
                    write_newest(&mut newest);
                    let _ = done.send(create_cursor(dir, &target, seq));
                }
                CursorOp::Remove(target, done) => {
                    write_newest(&mut newest);
                    let _ = done.send(remove_if_present(&dir.join(target)));
                }
                CursorOp::Flush(done) => {
                    write_newest(&mut newest);
                    let _ = done.send(Ok(()));
                }
            }
        }
        write_newest(&mut newest);
    }
}

/// One fixed-width write in place (replacing the file by a rename costs milliseconds on ext4,
/// which flushes on rename-over).
fn set_cursor(dir: &Path, target: &str, seq: u64) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(target))?;
    write_at_start(&file, format!("{seq:020}\n").as_bytes())
}

fn create_cursor(dir: &Path, target: &str, seq: u64) -> io::Result<()> {
    set_cursor(dir, target, seq)?;
    File::open(dir.join(target))?.sync_all()?;
    File::open(dir)?.sync_all()
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
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
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    file.write_all(bytes)
}

/// fsync of a folder shared by concurrent writers: a sync that starts after a file was created
/// makes that file's entry durable, so writers waiting together share one fsync.
#[derive(Debug)]
struct DirSync {
    dir: File,
    state: std::sync::Mutex<SyncState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    requested: u64,
    synced: u64,
    running: bool,
}

impl DirSync {
    fn new(dir: File) -> Self {
        Self {
            dir,
            state: Default::default(),
            done: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once a folder fsync that started after this call has finished.
    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if state.synced >= ticket {
                return Ok(());
            }
            if !state.running {
                state.running = true;
                let covers = state.requested;
                drop(state);
                let result = self.dir.sync_all();
                state = self.lock();
                state.running = false;
                if result.is_ok() {
                    state.synced = state.synced.max(covers);
                }
                self.done.notify_all();
                result?;
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn read_cursors(dir: &Path) -> io::Result<BTreeMap<String, u64>> {
    let mut cursors = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = fs::read_to_string(entry.path())?;
        let seq = text.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cursor file {} holds {text:?}", entry.path().display()),
            )
        })?;
        cursors.insert(name, seq);
    }
    Ok(cursors)
}

fn read_events(dir: &Path) -> io::Result<Recovered> {
    let mut recovered = Recovered::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".evt") {
            continue;
        }
        match parse_event(&fs::read(entry.path())?) {
            Parsed::Event(event) => recovered.events.push(Arc::new(event)),
            Parsed::CutShort => {
                fs::remove_file(entry.path())?;
                recovered.discarded.push(name);
            }
            Parsed::Invalid => {
                fs::rename(entry.path(), entry.path().with_extension("bad"))?;
                recovered.unreadable.push(name);
            }
        }
    }
    recovered.events.sort_by_key(|e| e.seq);
    Ok(recovered)
}

enum Parsed {
    Event(Event),
    CutShort,
    Invalid,
}

fn parse_event(bytes: &[u8]) -> Parsed {
    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
        return Parsed::CutShort;
    };
    let Ok(meta) = serde_json::from_slice::<Meta>(&bytes[..newline]) else {
        return Parsed::Invalid;
    };
    let body = &bytes[newline + 1..];
    match body.len().cmp(&meta.len) {
        std::cmp::Ordering::Less => Parsed::CutShort,
        std::cmp::Ordering::Greater => Parsed::Invalid,
        std::cmp::Ordering::Equal => Parsed::Event(Event {
            seq: meta.seq,
            id: meta.id,
            received_ms: meta.received_ms,
            content_type: meta.content_type,
            signature: meta.signature,
            body: Bytes::copy_from_slice(body),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(spool: &Spool, id: &str, body: &str) -> Event {
        Event {
            seq: spool.next_seq(),
            id: Some(id.to_owned()),
            received_ms: 1_700_000_000_000,
            content_type: Some("application/json; charset=utf-8".into()),
            signature: Some("t=1,v1=ab".into()),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn events_and_cursors_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, recovered) = Spool::open(dir.path(), true).unwrap();
        assert!(recovered.events.is_empty());
        let a = event(&spool, "evt_a", "{\"id\":\"evt_a\"}\n\u{e9}");
        let b = event(&spool, "evt_b", "");
        spool.write(&a).unwrap();
        spool.write(&b).unwrap();
        assert_eq!(spool.create_cursor("one").unwrap(), 2);
        spool.write_cursor("two", 1);
        drop(spool);

        let (spool, recovered) = Spool::open(dir.path(), true).unwrap();
        let events: Vec<Event> = recovered.events.iter().map(|e| (**e).clone()).collect();
        assert_eq!(events, vec![a, b]);
        assert_eq!(recovered.cursors["one"], 2);
        assert_eq!(recovered.cursors["two"], 1);
        assert_eq!(spool.next_seq(), 3);
    }

    #[test]
    fn a_spool_in_use_cannot_be_opened_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Spool::open(dir.path(), false).unwrap();
        let e = Spool::open(dir.path(), false).unwrap_err();
        assert!(e.to_string().contains("in use by another fanout"), "{e}");
        drop(first);
        assert!(Spool::open(dir.path(), false).is_ok());
    }

    #[test]
    fn sequence_numbers_continue_after_everything_was_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), false).unwrap();
        for _ in 0..5 {
            let e = event(&spool, "evt", "{}");
            spool.write(&e).unwrap();
            spool.remove(e.seq).unwrap();
            spool.remove(e.seq).unwrap();
        }
        spool.write_cursor("t", 5);
        drop(spool);
        let (spool, recovered) = Spool::open(dir.path(), false).unwrap();
        assert!(recovered.events.is_empty());
        assert_eq!(spool.next_seq(), 6);
    }

    #[test]
    fn files_cut_short_are_discarded_and_invalid_ones_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), false).unwrap();
        let good = event(&spool, "evt_good", "{}");
        spool.write(&good).unwrap();
        let events = dir.path().join("events");
        let meta = |seq: u64, len: usize| {
            format!(
                "{{\"seq\":{seq},\"id\":null,\"received_ms\":1,\"content_type\":null,\"signature\":null,\"len\":{len}}}\n"
            )
        };
        fs::write(
            events.join("00000000000000000007.evt"),
            meta(7, 10) + "short",
        )
        .unwrap();
        fs::write(events.join("00000000000000000008.evt"), "{\"seq\":8,").unwrap();
        fs::write(events.join("00000000000000000009.evt"), meta(9, 1) + "long").unwrap();
        fs::write(events.join("00000000000000000010.evt"), "not json\n{}").unwrap();
        drop(spool);
        let (_, recovered) = Spool::open(dir.path(), false).unwrap();
        assert_eq!(recovered.events.len(), 1);
        assert_eq!(recovered.events[0].id.as_deref(), Some("evt_good"));
        let mut discarded = recovered.discarded.clone();
        discarded.sort();
        assert_eq!(
            discarded,
            ["00000000000000000007.evt", "00000000000000000008.evt"]
        );
        let mut unreadable = recovered.unreadable.clone();
        unreadable.sort();
        assert_eq!(
            unreadable,
            ["00000000000000000009.evt", "00000000000000000010.evt"]
        );
        assert!(!events.join("00000000000000000007.evt").exists());
        assert!(events.join("00000000000000000009.bad").exists());
    }

    #[test]
    fn cursors_are_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), false).unwrap();
        spool.write_cursor("t", 123_456);
        spool.write_cursor("t", 7);
        spool.flush_cursors().unwrap();
        let text = fs::read_to_string(dir.path().join("cursors/t")).unwrap();
        assert_eq!(text, "00000000000000000007\n");
        drop(spool);
        assert_eq!(Spool::open(dir.path(), false).unwrap().1.cursors["t"], 7);
    }

    #[test]
    fn concurrent_writers_all_return_after_a_shared_folder_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), true).unwrap();
        let spool = Arc::new(spool);
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let spool = spool.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let e = event(&spool, "evt", "{}");
                        spool.write(&e).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let state = spool.events_dir.state.lock().unwrap();
        assert_eq!(state.requested, 40);
        assert_eq!(state.synced, 40);
        drop(state);
        drop(spool);
        assert_eq!(Spool::open(dir.path(), true).unwrap().1.events.len(), 40);
    }

    #[cfg(unix)]
    #[test]
    fn event_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), true).unwrap();
        let e = event(&spool, "evt", "{}");
        spool.write(&e).unwrap();
        let mode = fs::metadata(spool.event_path(e.seq))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
