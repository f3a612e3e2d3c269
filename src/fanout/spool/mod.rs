//! The on-disk spool: received events appended to segment files, and one cursor per target.
//!
//! Layout of `DIR`:
//! - `events/<n>.log`: segments, each a run of records (`recover`: a header with a checksum, a
//!   JSON line of metadata, then the exact body bytes; `docs/SPOOL.md`). Events are appended
//!   in batches, one writer at a time (`feed::Intake`), which numbers them as it writes them, so a segment
//!   holds its events in sequence order; then one `fdatasync` covers the whole batch (group
//!   commit): once `sync` returns, every event appended before it survives a crash of the
//!   process or of the machine. Appending to one file costs the journal far less than a file
//!   per event, which matters at 1,000 events/s. A new segment is started every
//!   `SEGMENT_BYTES` and on opening (and its folder entry is fsync'd before anything in it is
//!   acknowledged); while the relay is busy the next one is made ahead, zero-filled or recycled
//!   from a segment every target is done with, so that an fsync has no file size to commit
//!   (`files::Spare`). On recovery a record that does not check is skipped alone, its bytes
//!   kept in a quarantine file `<n>.log.bad-<offset>`. Files named `*.evt` (one record each,
//!   from earlier versions) are read the same way.
//! - `cursors/<target>`: the highest sequence number the target is done with (delivered or
//!   given up) with everything below it (`cursors`).
//!
//! A target that fell behind the events kept in memory reads the segments written since the
//! relay started back with `read_from`, at its own pace. A segment is deleted once every
//! target's cursor has passed all its events (the one being written to, once it has also been
//! idle a moment). After a failed fsync the spool refuses further writes: the kernel may have
//! dropped the data, and only a restart re-reads what is really on disk. Sequence numbers
//! continue after a restart from the highest number found in events, cursors and recycled
//! segments' markers, so they never repeat.

mod files;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::cursors::{CursorWriter, remove_if_present};
pub use super::recover::Recovered;
use super::recover::{self, Unread};
use super::route::Parsed;
use files::{Recyclable, Spare, create_private, make_private_dir, write_at};
pub(super) use files::{private_options, write_private_file};

/// Size after which a new segment is started.
pub const SEGMENT_BYTES: u64 = 4 << 20;

/// The least `--max-spool` takes: four segment files (the one written to, the one made ahead
/// and two for the targets behind).
pub const MIN_MAX_SPOOL: u64 = 4 * SEGMENT_BYTES;

/// A `--max-spool` size such as 512MiB or 2GB (the `bytesize` crate's units: KiB, MiB and GiB
/// are powers of 1024, KB, MB and GB of 1000; a bare number is bytes), at least
/// `MIN_MAX_SPOOL`.
pub fn parse_max_spool(text: &str) -> Result<u64, String> {
    let bytes = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|e| format!("expected a size such as 512MiB or 2GB ({e})"))?
        .as_u64();
    if bytes < MIN_MAX_SPOOL {
        return Err("the spool needs at least 16MiB (four segment files of 4 MiB)".into());
    }
    Ok(bytes)
}

/// How many segment files fit in `max_spool` bytes.
pub fn files_within(max_spool: u64) -> usize {
    usize::try_from(max_spool / SEGMENT_BYTES).unwrap_or(usize::MAX)
}

/// One received event, as spooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number, given when it is appended (0 before).
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
    cursors: CursorWriter,
    /// Held (an exclusive lock on `DIR/lock`) while the spool is open: two relays on one spool
    /// would deliver everything twice and reuse sequence numbers.
    _lock: File,
    fsync: bool,
    /// Tests hold it (written) to keep every fsync from starting: a disk whose flush is slow.
    #[cfg(test)]
    pub(crate) hold_sync: std::sync::RwLock<()>,
    /// The next number to give; only `append` moves it, under the log's lock.
    next_seq: AtomicU64,
    /// Segments sealed since the spool was opened (`sealed_so_far`).
    sealed: AtomicU64,
    logger: super::Log,
}

#[derive(Debug)]
struct Log {
    current: Option<Segment>,
    sealed: Vec<Sealed>,
    next_number: u64,
    /// Set after a failed fsync or a write that could not be undone: no more writes.
    broken: Option<String>,
    /// The next segment, made ahead while this one fills (`files::Spare`).
    spare: Option<Spare>,
    /// A segment every target is done with, to be the next spare (only while there is none, so
    /// the spool never holds more files than with a spare).
    recyclable: Option<Recyclable>,
    /// Segments sealed since the last sync started (it did not cover all their writes), until
    /// synced or retired: without a sync (every target keeping up) they would stay open.
    unsynced: Vec<(PathBuf, Arc<File>)>,
}

/// A segment no longer written to.
#[derive(Debug)]
struct Sealed {
    path: PathBuf,
    /// The first event of a segment this relay wrote (its events are in sequence order and can
    /// be read back by `read_from`); `None` for one found at start (its events are in memory).
    first_seq: Option<u64>,
    max_seq: u64,
    /// Where its records start and end (a zero-filled segment has zeros after them).
    start: u64,
    len: u64,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: Arc<File>,
    /// Where its records start: after the marker of a zero-filled segment.
    start: u64,
    /// Where its records end.
    len: u64,
    first_seq: Option<u64>,
    max_seq: u64,
    last_write: Instant,
}

impl Segment {
    fn new(path: PathBuf, file: File, start: u64) -> Segment {
        Segment {
            path,
            file: Arc::new(file),
            start,
            len: start,
            first_seq: None,
            max_seq: 0,
            last_write: Instant::now(),
        }
    }
}

/// What `append` did: the first `written` events were written (and numbered); `error` says why
/// the others were not.
#[derive(Debug)]
pub struct Appended {
    pub written: usize,
    pub error: Option<io::Error>,
}

/// Where a target reading the spool back goes on: the record of event `seq` starts at `offset`
/// of `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAt {
    pub seq: u64,
    path: PathBuf,
    offset: u64,
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
        let (found, next_number) = recover::read_segments(&events, &mut recovered)?;
        recover::read_cursors(&cursors, &mut recovered)?;
        // Every number read back is at most MAX_SEQ: the next one cannot overflow.
        let highest = recovered
            .events
            .iter()
            .map(|e| e.seq)
            .chain(recovered.cursors.values().copied())
            .chain([recovered.numbered_through.min(recover::MAX_SEQ)])
            .max()
            .unwrap_or(0);
        let spool = Spool {
            dir: dir.to_owned(),
            events,
            segment_bytes,
            log: Mutex::new(Log {
                current: None,
                sealed: found
                    .into_iter()
                    .map(|(path, max_seq)| Sealed {
                        path,
                        first_seq: None,
                        max_seq,
                        start: 0,
                        len: u64::MAX,
                    })
                    .collect(),
                next_number,
                broken: None,
                spare: None,
                recyclable: None,
                unsynced: Vec::new(),
            }),
            sync: GroupSync::default(),
            cursors: CursorWriter::start(cursors, logger.clone())?,
            logger,
            _lock: lock,
            fsync,
            #[cfg(test)]
            hold_sync: Default::default(),
            next_seq: AtomicU64::new(highest + 1),
            sealed: AtomicU64::new(0),
        };
        Ok((spool, recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The highest sequence number given so far (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst) - 1
    }

    /// Whether `sync` makes events durable (false with `--no-fsync`: it does nothing).
    pub fn fsyncs(&self) -> bool {
        self.fsync
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers the events in order and writes them, one write per segment they go to; not
    /// durable before `sync`. Blocking. A failed write is cut off again (or the spool stops
    /// writing): the events before it stay written and numbered, the others get no number.
    pub fn append(&self, events: &mut [Event]) -> Appended {
        let mut log = self.log();
        let mut written = 0;
        let mut buf = Vec::new();
        while written < events.len() {
            let (count, error) = self.append_run(&mut log, &mut events[written..], &mut buf);
            written += count;
            if error.is_some() {
                return Appended { written, error };
            }
        }
        Appended {
            written,
            error: None,
        }
    }

    /// Writes as many of `events` as fit in the current segment (at least one, starting a new
    /// segment when needed) in one write; returns how many.
    fn append_run(
        &self,
        log: &mut Log,
        events: &mut [Event],
        buf: &mut Vec<u8>,
    ) -> (usize, Option<io::Error>) {
        if let Some(why) = &log.broken {
            return (0, Some(io::Error::other(why.clone())));
        }
        buf.clear();
        let first_seq = self.next_seq.load(Ordering::SeqCst);
        let mut count = 0;
        let room = |log: &Log, more: usize| {
            log.current.as_ref().is_none_or(|s| {
                s.len == s.start || s.len - s.start + (more as u64) <= self.segment_bytes
            })
        };
        for event in events.iter_mut() {
            event.seq = first_seq + count as u64;
            let start = buf.len();
            if let Err(e) = recover::encode_into(event, buf) {
                event.seq = 0;
                return (count, Some(e));
            }
            if count > 0 && !room(log, buf.len()) {
                buf.truncate(start);
                event.seq = 0;
                break;
            }
            count += 1;
        }
        if !room(log, buf.len()) {
            self.seal(log);
        }
        if log.current.is_none() {
            match self.new_segment(log) {
                Ok(s) => log.current = Some(s),
                Err(e) => {
                    events[..count].iter_mut().for_each(|e| e.seq = 0);
                    return (0, Some(e));
                }
            }
        }
        let Log {
            current, broken, ..
        } = log;
        let segment = current.as_mut().expect("a segment was just opened");
        if let Err(e) = write_at(&segment.file, buf, segment.len) {
            // Cut the partial records off, or stop writing: a later record must not follow.
            if let Err(undo) = segment.file.set_len(segment.len) {
                *broken = Some(format!(
                    "the spool could not undo a failed write ({e}): {undo}; restart the relay"
                ));
            }
            events[..count].iter_mut().for_each(|e| e.seq = 0);
            return (0, Some(e));
        }
        let last_seq = first_seq + count as u64 - 1;
        segment.len += buf.len() as u64;
        segment.first_seq.get_or_insert(first_seq);
        segment.max_seq = last_seq;
        segment.last_write = Instant::now();
        self.next_seq.store(last_seq + 1, Ordering::SeqCst);
        if self.fsync
            && log.spare.is_none()
            && segment.len - segment.start >= self.segment_bytes / 2
        {
            self.start_spare(log);
        }
        (count, None)
    }

    /// Starts making the next segment (`files::Spare`), numbered now so that segments stay in
    /// the order of their events.
    fn start_spare(&self, log: &mut Log) {
        let path = self.segment_path(log.next_number);
        let bytes = recover::MARKER_LEN as u64 + self.segment_bytes;
        if let Some(spare) = Spare::start(&self.events, path, bytes, log.recyclable.take()) {
            log.next_number += 1;
            log.spare = Some(spare);
        }
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        self.events.join(format!("{number:012}.log"))
    }

    /// Stops writing to the current segment; the next `sync` makes its writes durable. Syncing
    /// it here made the request that filled it wait for a whole segment's writeback, and the
    /// relay's async thread with it: 0.3 ms at the median, 2.1 ms at the longest, twenty times
    /// a second at concurrency 16 (`perf trace`), and as long as the disk takes on a bad day.
    fn seal(&self, log: &mut Log) {
        let Some(segment) = log.current.take() else {
            return;
        };
        if self.fsync {
            log.unsynced
                .push((segment.path.clone(), segment.file.clone()));
        }
        log.sealed.push(Sealed {
            path: segment.path,
            first_seq: segment.first_seq,
            max_seq: segment.max_seq,
            start: segment.start,
            len: segment.len,
        });
        self.sealed.fetch_add(1, Ordering::Release);
    }

    /// How many segments were sealed since the spool was opened: a new one was started each
    /// time (without a lock, for a check after every append).
    pub fn sealed_so_far(&self) -> u64 {
        self.sealed.load(Ordering::Acquire)
    }

    /// The segment made ahead when there is one, else a new empty file.
    fn new_segment(&self, log: &mut Log) -> io::Result<Segment> {
        if let Some(spare) = log.spare.take() {
            let path = spare.path.clone();
            match spare.finish() {
                Ok(file) => return Ok(Segment::new(path, file, recover::MARKER_LEN as u64)),
                Err(e) => self.logger.line(format!(
                    "spool: could not make {} ahead ({e}); writing a new segment without it",
                    path.display()
                )),
            }
        }
        let path = self.segment_path(log.next_number);
        log.next_number += 1;
        let file = create_private(&path)?;
        if self.fsync {
            File::open(&self.events)?.sync_all()?;
        }
        Ok(Segment::new(path, file, 0))
    }

    /// Makes every event appended so far durable (nothing to do with `fsync: false`). Returns
    /// once an fdatasync of the current segment that started after this call has finished:
    /// concurrent callers share one.
    pub fn sync(&self) -> io::Result<()> {
        if !self.fsync {
            return Ok(());
        }
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
                let files = self.unsynced_files();
                #[cfg(test)]
                let _held = self.hold_sync.read();
                let result = files.iter().try_for_each(|f| f.sync_data());
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

    /// The files a sync starting now makes durable: the segments sealed since the last one
    /// started, and the current one.
    fn unsynced_files(&self) -> Vec<Arc<File>> {
        let mut log = self.log();
        let sealed = std::mem::take(&mut log.unsynced).into_iter();
        let current = log.current.as_ref().map(|s| s.file.clone());
        sealed.map(|(_, file)| file).chain(current).collect()
    }

    /// The segment being written to.
    #[cfg(test)]
    pub(crate) fn current_segment(&self) -> Option<PathBuf> {
        self.log().current.as_ref().map(|s| s.path.clone())
    }

    /// How many times `sync` was called.
    #[cfg(test)]
    pub(crate) fn syncs_started(&self) -> u64 {
        self.sync.lock().requested
    }

    /// Events written since the relay started, from `from` up to and excluding `until`, about
    /// `budget` bytes of them (at least one event), in sequence order, read back from the
    /// segments; and where to go on (`at`, from the last call, saves looking for the segment
    /// again). Blocking. A record that does not check (damaged on disk since it was written) is
    /// logged and skipped.
    pub fn read_from(
        &self,
        from: u64,
        until: u64,
        budget: usize,
        at: Option<ReadAt>,
    ) -> io::Result<(Vec<Event>, Option<ReadAt>)> {
        let (mut path, mut offset) = match at.filter(|a| a.seq == from) {
            Some(a) => (a.path, a.offset),
            None => match self.segment_of(from) {
                Some(path) => (path, 0),
                None => return Ok((Vec::new(), None)),
            },
        };
        let mut events: Vec<Event> = Vec::new();
        let mut bytes = 0;
        let go_on = |events: &[Event], path: &Path, offset: u64, seq: Option<u64>| {
            let seq = seq.unwrap_or_else(|| events.last().map_or(from, |e| e.seq + 1));
            Some(ReadAt {
                seq,
                path: path.to_owned(),
                offset,
            })
        };
        loop {
            // Only what was written: a zero-filled segment has its marker before and zeros after.
            let (start, end) = self.extent(&path);
            offset = offset.max(start);
            let left = usize::try_from(end.saturating_sub(offset)).unwrap_or(usize::MAX);
            let mut chunk = read_chunk(&path, offset, budget.max(READ_CHUNK).min(left))?;
            let mut used = 0;
            while used < chunk.len() {
                match recover::read_record(&chunk[used..]) {
                    Ok((event, len)) => {
                        if event.seq >= until {
                            let at = go_on(&events, &path, offset + used as u64, Some(event.seq));
                            return Ok((events, at));
                        }
                        used += len;
                        if event.seq >= from {
                            bytes += len;
                            events.push(event);
                        }
                        if bytes >= budget {
                            let at = go_on(&events, &path, offset + used as u64, None);
                            return Ok((events, at));
                        }
                    }
                    // A record longer than the chunk: read it whole.
                    Err(Unread::Incomplete) if used == 0 => {
                        let whole = read_chunk(&path, offset, left)?;
                        if whole.len() == chunk.len() {
                            break; // the end of what was written
                        }
                        chunk = whole;
                    }
                    Err(Unread::Incomplete) => break,
                    Err(Unread::Invalid(why)) => {
                        let next = recover::next_header(&chunk, used + 1);
                        self.logger.line(format!(
                            "spool: {} bytes at offset {} of {} are not a readable event ({why}); skipped while reading the spool back",
                            next - used,
                            offset + used as u64,
                            path.display()
                        ));
                        used = next;
                    }
                }
            }
            offset += used as u64;
            if used > 0 {
                continue;
            }
            // Nothing more in this segment: on to the next one, once this one is sealed.
            match self.segment_after(&path) {
                Some(next) => (path, offset) = (next, 0),
                None => {
                    let at = go_on(&events, &path, offset, None);
                    return Ok((events, at));
                }
            }
        }
    }

    /// Where the records of segment `path` start and end now (all of it when it is unknown).
    fn extent(&self, path: &Path) -> (u64, u64) {
        let log = self.log();
        match &log.current {
            Some(s) if s.path == path => (s.start, s.len),
            _ => log
                .sealed
                .iter()
                .find(|s| s.path == path)
                .map_or((0, u64::MAX), |s| (s.start, s.len)),
        }
    }

    /// The segment written by this relay that holds event `seq` (or the first one after it).
    fn segment_of(&self, seq: u64) -> Option<PathBuf> {
        let log = self.log();
        log.sealed
            .iter()
            .filter_map(|s| Some((s.path.clone(), s.first_seq?, s.max_seq)))
            .chain(
                log.current
                    .iter()
                    .filter_map(|s| Some((s.path.clone(), s.first_seq?, s.max_seq))),
            )
            .find(|(_, _, max)| *max >= seq)
            .map(|(path, _, _)| path)
    }

    /// The segment after `path`, once `path` is sealed (its end is then final).
    fn segment_after(&self, path: &Path) -> Option<PathBuf> {
        let log = self.log();
        let at = log.sealed.iter().position(|s| s.path == path)?;
        log.sealed
            .get(at + 1)
            .map(|s| s.path.clone())
            .or_else(|| log.current.as_ref().map(|s| s.path.clone()))
    }

    /// Deletes the segments whose events are all at or below `done_through`; the current one
    /// too once nothing was written to it for `idle` (so that a busy relay does not start a new
    /// segment for every event).
    pub fn retire(&self, done_through: u64, idle: Duration) {
        self.remove_retired(self.take_retired(done_through, idle));
    }

    /// The segments `retire` deletes, no longer the spool's: deciding is a look at the list
    /// under its lock, without the disk, so the periodic sweep does it in place and hands a
    /// thread only files to delete. One made ahead by this relay (its records after a marker)
    /// is kept instead to be recycled as the next spare, when there is none.
    pub fn take_retired(&self, done_through: u64, idle: Duration) -> Vec<PathBuf> {
        let mut log = self.log();
        // Each with whether it was made ahead, and its highest number.
        let mut retired: Vec<(PathBuf, bool, u64)> = Vec::new();
        let made_ahead = |start: u64, first_seq: Option<u64>| {
            start == recover::MARKER_LEN as u64 && first_seq.is_some()
        };
        log.sealed.retain(|s| {
            let done = s.max_seq <= done_through;
            if done {
                retired.push((s.path.clone(), made_ahead(s.start, s.first_seq), s.max_seq));
            }
            !done
        });
        if log
            .current
            .as_ref()
            .is_some_and(|s| s.max_seq <= done_through && s.last_write.elapsed() >= idle)
            && let Some(s) = log.current.take()
        {
            retired.push((s.path, made_ahead(s.start, s.first_seq), s.max_seq));
        }
        // Every target is done with them: nothing in them needs the disk any more.
        log.unsynced
            .retain(|(path, _)| !retired.iter().any(|(gone, ..)| gone == path));
        let mut gone = Vec::new();
        for (path, made_ahead, max_seq) in retired {
            if made_ahead && log.spare.is_none() && log.recyclable.is_none() {
                log.recyclable = Some(Recyclable { path, max_seq });
            } else {
                gone.push(path);
            }
        }
        gone
    }

    /// Deletes segments `take_retired` gave up.
    pub fn remove_retired(&self, gone: Vec<PathBuf>) {
        for path in gone {
            if let Err(e) = remove_if_present(&path) {
                self.logger
                    .line(format!("spool: cannot remove {}: {e}", path.display()));
            }
        }
    }

    /// Whether the segment files holding events some target still needs (every event above
    /// `done_through`), with the one being written to and the one made ahead, are more than
    /// `max_files`: then how many there are, and the last event of the oldest segments to let
    /// go for the rest to fit.
    pub fn over(&self, max_files: usize, done_through: u64) -> Option<(usize, u64)> {
        let log = self.log();
        let mut needed: Vec<u64> = log
            .sealed
            .iter()
            .map(|s| s.max_seq)
            .filter(|&max_seq| max_seq > done_through)
            .collect();
        needed.sort_unstable();
        let files = needed.len()
            + usize::from(log.current.is_some())
            + usize::from(log.spare.is_some() || log.recyclable.is_some());
        let excess = files.checked_sub(max_files).filter(|&n| n > 0)?;
        let through = needed.get(excess.min(needed.len()).checked_sub(1)?)?;
        Some((files, *through))
    }

    /// Segment files in the spool now.
    pub fn segments(&self) -> usize {
        let log = self.log();
        log.sealed.len() + usize::from(log.current.is_some())
    }

    /// Records that `target` is done with everything up to `seq`, without waiting for the disk
    /// (`cursors`).
    pub fn write_cursor(&self, target: &str, seq: u64) {
        self.cursors.set(target, seq);
    }

    /// Creates the cursor of a target seen for the first time, durably: it starts at the newest
    /// event, so a new target receives what arrives from now on.
    pub fn create_cursor(&self, target: &str) -> io::Result<u64> {
        let seq = self.last_seq();
        self.cursors.create(target, seq)?;
        Ok(seq)
    }

    /// Forgets a target that was removed from the configuration.
    pub fn remove_cursor(&self, target: &str) -> io::Result<()> {
        self.cursors.remove(target)
    }

    /// Returns once every cursor update made so far is written.
    pub fn flush_cursors(&self) -> io::Result<()> {
        self.cursors.flush()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.flush_cursors();
        let mut log = self.log();
        if let Some(spare) = log.spare.take() {
            let _ = spare.finish();
        }
        if let Some(recyclable) = log.recyclable.take() {
            let _ = remove_if_present(&recyclable.path);
        }
    }
}

/// How much of a segment one read takes, at least.
const READ_CHUNK: usize = 256 * 1024;

/// Up to `max` bytes of `path` from `offset` (fewer at its end).
fn read_chunk(path: &Path, offset: u64, max: usize) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let mut file = File::open(path)?;
    file.seek(io::SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
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

#[cfg(test)]
mod tests;
