//! The spool's files: created with mode 0600 in folders of mode 0700, written at an offset, and
//! segments prepared ahead, full of zeros or recycled, so that appending to them changes no file
//! size.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::fanout::recover::{ZERO_FILLED, recycled_marker};

/// The next segment, being made in the background: created, its marker written and the rest
/// filled with zeros, all of it synced with its folder entry. An fdatasync after appending to
/// such a file has no file size to commit, only the data: on the test machine's ext4 a sync of
/// 5.4 KB took 99-104 µs (p50) instead of 141-179 µs when appending, and no write stalled for
/// milliseconds behind the journal (`docs/SPOOL.md`). Segments are made this way only while the
/// relay is busy (the current one half full), so a quiet relay does not write 4 MiB of zeros
/// for each event after its segments were retired.
///
/// Or, when a segment every target is done with is at hand, that one is recycled: its marker
/// says from which number its records are new (`recover::RECYCLED`), then it is renamed. Its
/// blocks are written already, so appending to it commits no more than to zeros, and neither
/// the zeros nor the deleting of the old file cost anything: writing the zeros (the page cache
/// copy and its writeback) and unlinking were 5.2 % of the relay's CPU at concurrency 16
/// (`perf record`, `cargo bench --bench fanout`). For 60,500 events at 16 the relay wrote 434
/// MiB to the disk instead of 677 (`/proc/PID/io`; three spares in four were recycled).
#[derive(Debug)]
pub(super) struct Spare {
    pub path: PathBuf,
    making: JoinHandle<io::Result<File>>,
}

/// A segment every target is done with, kept to be the next spare.
#[derive(Debug)]
pub(super) struct Recyclable {
    pub path: PathBuf,
    /// Its highest sequence number: the new records are numbered above it.
    pub max_seq: u64,
}

impl Spare {
    /// Starts making `path`, `bytes` long, from `old` when given, in a thread of its own (None
    /// when none can start; `old` is then deleted).
    pub fn start(
        folder: &Path,
        path: PathBuf,
        bytes: u64,
        old: Option<Recyclable>,
    ) -> Option<Spare> {
        let (folder, at) = (folder.to_owned(), path.clone());
        let old_path = old.as_ref().map(|o| o.path.clone());
        let making = std::thread::Builder::new()
            .name("fanout-segment".into())
            .spawn(move || match old {
                Some(old) => recycled(&folder, old, &at),
                None => zero_filled(&folder, &at, bytes),
            });
        match making {
            Ok(making) => Some(Spare { path, making }),
            Err(_) => {
                if let Some(old) = old_path {
                    let _ = fs::remove_file(old);
                }
                None
            }
        }
    }

    /// The file, once made (waits for it: it was started half a segment earlier). A spare that
    /// could not be made is removed.
    pub fn finish(self) -> io::Result<File> {
        let made = self
            .making
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread making it panicked")));
        if made.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        made
    }
}

/// `old`, marked as recycled and renamed `path`, all of it synced. The marker is durable before
/// the rename: a crash in between leaves a segment whose records are all from its earlier
/// life, which recovery reads as empty.
fn recycled(folder: &Path, old: Recyclable, path: &Path) -> io::Result<File> {
    let made = (|| {
        let file = OpenOptions::new().write(true).open(&old.path)?;
        write_at(&file, &recycled_marker(old.max_seq + 1), 0)?;
        file.sync_data()?;
        fs::rename(&old.path, path)?;
        File::open(folder)?.sync_all()?;
        keep_cached(&file);
        Ok(file)
    })();
    if made.is_err() {
        let _ = fs::remove_file(&old.path);
    }
    made
}

fn zero_filled(folder: &Path, path: &Path, bytes: u64) -> io::Result<File> {
    // Below the relay's own threads: copying 4 MiB into the page cache is work that can wait a
    // moment, and it must not delay the events in flight (Linux keeps a nice value per thread).
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    let file = create_private(path)?;
    write_at(&file, ZERO_FILLED, 0)?;
    let zeros = vec![0u8; 256 << 10];
    let mut at = ZERO_FILLED.len() as u64;
    while at < bytes {
        let n = (bytes - at).min(zeros.len() as u64);
        write_at(&file, &zeros[..n as usize], at)?;
        write_out(&file, at, n);
        at += n;
    }
    file.sync_all()?;
    File::open(folder)?.sync_all()?;
    Ok(file)
}

#[cfg(unix)]
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
pub(super) fn write_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, Write};
    file.seek(io::SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Writes a new file with mode 0600 (a quarantine file of the recovery).
pub(in crate::fanout) fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(bytes)
}

pub(super) fn create_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
}

/// Options that create a file with mode 0600.
pub(in crate::fanout) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Mode 0700 for a folder of the spool (also one made by an earlier version with 0755).
pub(super) fn make_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Asks for the file's pages to be read into the page cache now, in the background, should
/// they have left it: appending part of a page that is not cached reads it from the disk first,
/// in the relay's async thread.
fn keep_cached(file: &File) {
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::fd::AsRawFd;
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Writes a range out to the disk now, a piece at a time, so that the relay's own fsyncs never
/// wait behind megabytes of zeros flushed at once (Linux; elsewhere the final sync does it).
fn write_out(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::fd::AsRawFd;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}
