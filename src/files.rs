//! Reading what the user points at (secrets, headers, bodies, receipts, configs, templates):
//! only regular files, and at most `MAX_BYTES` of them, so that a FIFO cannot block the tool and
//! `/dev/zero` cannot exhaust its memory. Errors describe the file, never its content.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Larger than any file stripe-ops reads legitimately (a Stripe event is under 1 MiB).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The bytes of a regular file of at most `MAX_BYTES`; anything else is exit 2 naming `what`.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::usage(format!("cannot read {what} {shown}: {e}")))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a pipe, socket or device)"
        };
        return Err(Error::usage(format!(
            "cannot read {what} {shown}: it is {kind}"
        )));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Error::usage(format!("cannot read {what} {shown}: {e}")))?;
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_BYTES) as usize);
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::usage(format!("cannot read {what} {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(Error::usage(format!(
            "{what} {shown} is larger than {} MiB; that is not a file stripe-ops expects",
            MAX_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// Like `read`, as UTF-8 text.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    String::from_utf8(read(path, what)?)
        .map_err(|_| Error::usage(format!("{what} {} is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text(&p, "body file").unwrap(), "hello");
        let e = read(dir.path(), "body file").unwrap_err();
        assert_eq!(e.exit.code(), 2);
        assert!(e.message().contains("a directory"), "{}", e.message());
        let e = read(Path::new("/dev/zero"), "secret file").unwrap_err();
        assert!(
            e.message().contains("not a regular file"),
            "{}",
            e.message()
        );
        let e = read(&dir.path().join("missing"), "secret file").unwrap_err();
        assert_eq!(e.exit.code(), 2);
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(
            read_text(&p, "x")
                .unwrap_err()
                .message()
                .contains("not UTF-8")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success());
        let e = read(&p, "header file").unwrap_err();
        assert!(
            e.message().contains("not a regular file"),
            "{}",
            e.message()
        );
    }
}
