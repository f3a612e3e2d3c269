//! The on-disk spool: received events appended to segment files, and one cursor per target.
//!
//! Layout of `DIR`:
//! - `events/<n>.log`: segments, each a run of records (`recover`: a header with a checksum, a
//!   JSON line of metadata, then the exact body bytes; `docs/SPOOL.md`). Writers
//!   append their record under a lock, then share one `fdatasync` of the segment (group
//!   commit): after `write` returns, the event survives a crash of the process or of the
//!   machine. Appending to one file costs the journal far less than a file per event, which
//!   matters at 1,000 events/s. A new segment is started every `SEGMENT_BYTES` and on
//!   opening (and its folder entry is fsync'd before anything in it is acknowledged). On
//!   recovery a record that does not check is skipped alone, its bytes kept in a quarantine
//!   file `<n>.log.bad-<offset>`. Files named `*.evt` (one record each, from earlier
//!   versions) are read the same way.
//! - `cursors/<target>`: the highest sequence number the target is done with (delivered or
//!   given up) with everything below it, as 20 digits and a newline. Updates are written in
//!   place, not fsync'd, by one background thread that keeps only the newest value per target:
//!   a write to a file can wait behind the journal while events are fsync'd, and a delivery
//!   must not. Losing an update (crash, power cut) only means delivering again, which webhook
//!   receivers must tolerate anyway (Stripe does it too).
//!
//! A segment is deleted once every target's cursor has passed all its events (the one being
//! written to, once it has also been idle a moment). After a failed fsync the spool refuses
//! further writes: the kernel may have dropped the data, and only a restart re-reads what is
//! really on disk. Sequence numbers continue after a restart from the highest number found in
//! events and cursors, so they never repeat.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;

pub use super::recover::Recovered;
use super::recover::{self, Sealed};
use super::route::Parsed;

/// Size after which a new segment is started.
pub const SEGMENT_BYTES: u64 = 4 << 20;

/// One received event, as spooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub id: Option<String>,
    pub received_ms: i64,
    pub content_type: Option<String>,
    pub signature: Option<String>,
    pub body: Bytes,
    /// The body's JSON, for the routes.
    pub parsed: Parsed,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    events: PathBuf,
    segment_bytes: u64,
    log: Mutex<Log>,
    sync: GroupSync,
    cursor_writer: CursorWriter,
    /// Held (an exclusive lock on `DIR/lock`) while the spool is open: two relays on one spool
    /// would deliver everything twice and reuse sequence numbers.
    _lock: File,
    fsync: bool,
    next_seq: AtomicU64,
    logger: super::Log,
}

#[derive(Debug)]
struct Log {
    current: Option<Segment>,
    sealed: Vec<Sealed>,
    next_number: u64,
    /// Set after a failed fsync or a write that could not be undone: no more writes.
    broken: Option<String>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    max_seq: u64,
    last_write: Instant,
}

impl Spool {
    /// Opens (creating) a spool folder and reads back what it holds. `fsync: false` keeps events
    /// safe from a crash of the process (kill -9) but not from a crash of the machine.
    pub fn open(dir: &Path, fsync: bool) -> io::Result<(Spool, Recovered)> {
        Self::open_with(dir, fsync, SEGMENT_BYTES, super::Log::silent())
    }

    /// Like `open`, with the segment size and where problems in the background are logged.
    pub fn open_with(
        dir: &Path,
        fsync: bool,
        segment_bytes: u64,
        logger: super::Log,
    ) -> io::Result<(Spool, Recovered)> {
        let events = dir.join("events");
        let cursors = dir.join("cursors");
        // Events hold payment data and signatures: the spool is its owner's alone.
        for d in [dir, events.as_path(), cursors.as_path()] {
            fs::create_dir_all(d)?;
            make_private_dir(d)?;
        }
        let lock = private_options()
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
        let mut recovered = Recovered::default();
        let (sealed, next_number) = recover::read_segments(&events, &mut recovered)?;
        recover::read_cursors(&cursors, &mut recovered)?;
        // Every number read back is at most MAX_SEQ: the next one cannot overflow.
        let highest = recovered
            .events
            .iter()
            .map(|e| e.seq)
            .chain(recovered.cursors.values().copied())
            .max()
            .unwrap_or(0);
        let spool = Spool {
            dir: dir.to_owned(),
            events,
            segment_bytes,
            log: Mutex::new(Log {
                current: None,
                sealed,
                next_number,
                broken: None,
            }),
            sync: GroupSync::default(),
            cursor_writer: CursorWriter::start(cursors, logger.clone())?,
            logger,
            _lock: lock,
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

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes an event durably (see the module comment). Blocking: call from a blocking thread.
    pub fn write(&self, event: &Event) -> io::Result<()> {
        let record = recover::encode(event)?;
        self.append(event.seq, &record)?;
        if self.fsync {
            self.sync_current()?;
        }
        Ok(())
    }

    fn append(&self, seq: u64, record: &[u8]) -> io::Result<()> {
        let mut log = self.log();
        if let Some(why) = &log.broken {
            return Err(io::Error::other(why.clone()));
        }
        let full = log
            .current
            .as_ref()
            .is_some_and(|s| s.len > 0 && s.len + record.len() as u64 > self.segment_bytes);
        if full {
            self.seal(&mut log)?;
        }
        if log.current.is_none() {
            log.current = Some(self.new_segment(&mut log)?);
        }
        let Log {
            current, broken, ..
        } = &mut *log;
        let segment = current.as_mut().expect("a segment was just opened");
        if let Err(e) = write_at(&segment.file, record, segment.len) {
            // Cut the partial record off, or stop writing: a later record must not follow it.
            if let Err(undo) = segment.file.set_len(segment.len) {
                *broken = Some(format!(
                    "the spool could not undo a failed write ({e}): {undo}; restart the relay"
                ));
            }
            return Err(e);
        }
        segment.len += record.len() as u64;
        segment.max_seq = segment.max_seq.max(seq);
        segment.last_write = Instant::now();
        Ok(())
    }

    /// Stops writing to the current segment; its writes are made durable first, because the
    /// group sync only ever syncs the current segment.
    fn seal(&self, log: &mut Log) -> io::Result<()> {
        let Some(segment) = log.current.take() else {
            return Ok(());
        };
        if self.fsync
            && let Err(e) = segment.file.sync_data()
        {
            log.broken = Some(format!("fsync of the spool failed: {e}; restart the relay"));
            return Err(e);
        }
        log.sealed.push((segment.path, segment.max_seq));
        Ok(())
    }

    fn new_segment(&self, log: &mut Log) -> io::Result<Segment> {
        let path = self.events.join(format!("{:012}.log", log.next_number));
        log.next_number += 1;
        let file = create_private(&path)?;
        if self.fsync {
            File::open(&self.events)?.sync_all()?;
        }
        Ok(Segment {
            path,
            file: Arc::new(file),
            len: 0,
            max_seq: 0,
            last_write: Instant::now(),
        })
    }

    /// Returns once an fdatasync of the current segment that started after this call has
    /// finished: concurrent writers share one.
    fn sync_current(&self) -> io::Result<()> {
        let mut state = self.sync.lock();
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if let Some(why) = &state.failed {
                return Err(io::Error::other(why.clone()));
            }
            if state.synced >= ticket {
                return Ok(());
            }
            if !state.running {
                state.running = true;
                let covers = state.requested;
                drop(state);
                // Earlier segments were synced when they were sealed.
                let file = self.log().current.as_ref().map(|s| s.file.clone());
                let result = file.map_or(Ok(()), |f| f.sync_data());
                state = self.sync.lock();
                state.running = false;
                match result {
                    Ok(()) => state.synced = state.synced.max(covers),
                    Err(e) => {
                        let why = format!("fsync of the spool failed: {e}; restart the relay");
                        self.log().broken = Some(why.clone());
                        state.failed = Some(why);
                    }
                }
                self.sync.done.notify_all();
                continue;
            }
            state = self
                .sync
                .done
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Deletes the segments whose events are all at or below `done_through`; the current one
    /// too once nothing was written to it for `idle` (so that a busy relay does not start a new
    /// segment for every event).
    pub fn retire(&self, done_through: u64, idle: Duration) {
        let gone: Vec<PathBuf> = {
            let mut log = self.log();
            let mut gone = Vec::new();
            log.sealed.retain(|(path, max_seq)| {
                let done = *max_seq <= done_through;
                if done {
                    gone.push(path.clone());
                }
                !done
            });
            if log
                .current
                .as_ref()
                .is_some_and(|s| s.max_seq <= done_through && s.last_write.elapsed() >= idle)
                && let Some(s) = log.current.take()
            {
                gone.push(s.path);
            }
            gone
        };
        for path in gone {
            if let Err(e) = remove_if_present(&path) {
                self.logger
                    .line(format!("spool: cannot remove {}: {e}", path.display()));
            }
        }
    }

    /// Segment files in the spool now.
    pub fn segments(&self) -> usize {
        let log = self.log();
        log.sealed.len() + usize::from(log.current.is_some())
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
    fn start(dir: PathBuf, logger: super::Log) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("fanout-cursors".into())
            .spawn(move || write_cursors(&dir, rx, logger))?;
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

fn write_cursors(dir: &Path, ops: std::sync::mpsc::Receiver<CursorOp>, logger: super::Log) {
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    let write_newest = |newest: &mut BTreeMap<String, u64>| {
        for (target, seq) in std::mem::take(newest) {
            if let Err(e) = set_cursor(dir, &target, seq) {
                logger.line(format!("spool: cannot save the cursor of {target}: {e}"));
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
    let file = private_options()
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

#[derive(Debug, Default)]
struct GroupSync {
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    requested: u64,
    synced: u64,
    running: bool,
    failed: Option<String>,
}

impl GroupSync {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, Write};
    file.seek(io::SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Writes a new file with mode 0600 (a quarantine file of the recovery).
pub(super) fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(bytes)
}

fn create_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
}

/// Options that create a file with mode 0600.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Mode 0700 for a folder of the spool (also one made by an earlier version with 0755).
fn make_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
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
            parsed: Parsed::default(),
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join("events"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
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
        let c = event(&spool, "evt_c", "{}");
        spool.write(&c).unwrap();
        assert_eq!(
            files(dir.path()),
            ["000000000000.log", "000000000001.log"],
            "a reopened spool writes to a new segment"
        );
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
    fn segments_roll_and_leave_once_all_their_events_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) =
            Spool::open_with(dir.path(), true, 600, super::super::Log::silent()).unwrap();
        let body = "x".repeat(150);
        for _ in 0..9 {
            spool.write(&event(&spool, "evt", &body)).unwrap();
        }
        // About 270 bytes per record: two per segment, so five segments for nine events.
        assert_eq!(spool.segments(), 5);
        spool.retire(4, Duration::ZERO);
        assert_eq!(spool.segments(), 3);
        assert_eq!(files(dir.path()).len(), 3);
        spool.retire(9, Duration::from_secs(3600));
        assert_eq!(
            spool.segments(),
            1,
            "the current segment waits until it is idle"
        );
        spool.retire(9, Duration::ZERO);
        assert!(files(dir.path()).is_empty());
        spool.write(&event(&spool, "evt", "{}")).unwrap();
        assert_eq!(files(dir.path()), ["000000000005.log"]);
    }

    #[test]
    fn sequence_numbers_continue_after_everything_was_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), false).unwrap();
        for _ in 0..5 {
            spool.write(&event(&spool, "evt", "{}")).unwrap();
        }
        spool.retire(5, Duration::ZERO);
        spool.write_cursor("t", 5);
        drop(spool);
        let (spool, recovered) = Spool::open(dir.path(), false).unwrap();
        assert!(recovered.events.is_empty());
        assert_eq!(spool.next_seq(), 6);
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        let (spool, _) = Spool::open(&root, false).unwrap();
        spool.create_cursor("t").unwrap();
        spool.write(&event(&spool, "evt_1", "{}")).unwrap();
        drop(spool);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for d in [root.clone(), root.join("events"), root.join("cursors")] {
            assert_eq!(mode(&d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&root.join("lock")), 0o600);
        assert_eq!(mode(&root.join("cursors/t")), 0o600);
        for f in fs::read_dir(root.join("events")).unwrap() {
            assert_eq!(mode(&f.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn unreadable_bytes_are_kept_aside_and_everything_else_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), false).unwrap();
        let good = event(&spool, "evt_good", "{}");
        spool.write(&good).unwrap();
        drop(spool);
        let events = dir.path().join("events");
        let meta = |seq: u64, len: usize| {
            format!(
                "{{\"seq\":{seq},\"id\":null,\"received_ms\":1,\"content_type\":null,\"signature\":null,\"len\":{len}}}\n"
            )
        };
        let mut torn = fs::read(events.join("000000000000.log")).unwrap();
        torn.extend_from_slice(b"SOR2 0000");
        fs::write(events.join("000000000000.log"), torn).unwrap();
        // An earlier version's records, one of them unreadable, then a readable one.
        fs::write(
            events.join("000000000001.log"),
            meta(3, 2) + "{}" + "not json\n" + &meta(5, 2) + "{}",
        )
        .unwrap();
        fs::write(events.join("00000000000000000004.evt"), meta(4, 2) + "{}").unwrap();
        fs::write(events.join("notes.txt"), "a stray file").unwrap();
        fs::write(dir.path().join("cursors/.DS_Store"), "x").unwrap();
        fs::write(dir.path().join("cursors/junk"), "hello").unwrap();
        fs::write(dir.path().join("cursors/maxed"), format!("{}\n", u64::MAX)).unwrap();

        let (spool, recovered) = Spool::open(dir.path(), false).unwrap();
        let seqs: Vec<u64> = recovered.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 3, 4, 5]);
        let kept: Vec<(&str, &str)> = recovered
            .quarantined
            .iter()
            .map(|q| (q.segment.as_str(), q.kept_in.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("000000000000.log", "000000000000.log.bad-151"),
                ("000000000001.log", "000000000001.log.bad-83"),
            ]
        );
        assert_eq!(
            fs::read_to_string(events.join("000000000001.log.bad-83")).unwrap(),
            "not json\n"
        );
        assert_eq!(recovered.warnings.len(), 4, "{:?}", recovered.warnings);
        assert_eq!(recovered.cursors.get("maxed"), Some(&0));
        assert!(!recovered.cursors.contains_key("junk"));
        // The next number does not wrap.
        assert_eq!(spool.next_seq(), 6);
        spool.retire(5, Duration::ZERO);
        let left = files(dir.path());
        assert!(
            left.contains(&"000000000001.log.bad-83".to_owned()),
            "{left:?}"
        );
        assert!(left.contains(&"notes.txt".to_owned()));
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
    fn concurrent_writers_share_fsyncs_and_all_their_events_survive() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) =
            Spool::open_with(dir.path(), true, 2000, super::super::Log::silent()).unwrap();
        let spool = Arc::new(spool);
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let spool = spool.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let e = event(&spool, "evt", &"y".repeat(100));
                        spool.write(&e).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let state = spool.sync.lock();
        assert_eq!(state.requested, 200);
        assert_eq!(state.synced, 200);
        drop(state);
        assert!(
            spool.segments() > 1,
            "the writers crossed segment boundaries"
        );
        drop(spool);
        let (_, recovered) = Spool::open(dir.path(), true).unwrap();
        let seqs: Vec<u64> = recovered.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    }

    #[cfg(unix)]
    #[test]
    fn segment_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), true).unwrap();
        spool.write(&event(&spool, "evt", "{}")).unwrap();
        let path = dir.path().join("events").join("000000000000.log");
        let mode = fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
