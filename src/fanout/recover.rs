//! The spool's records on disk, and how a spool is read back when it opens (pure parsing, and
//! the reading of its folders). The format and its recovery rules are in `docs/SPOOL.md`.
//!
//! A record is `SOR2 <crc32> <metadata JSON>\n<body>`: a magic, the CRC-32 (IEEE, `crc32fast`)
//! of the metadata line and the body in 8 hex digits, the metadata (`seq`, `id`,
//! `received_ms`, `content_type`, `signature`, `len`), a newline, then the exact body bytes.
//! Records of earlier versions (no magic, no checksum: `{"seq":…}\n<body>`) are still read.
//!
//! Recovery skips only what it cannot read: a record whose checksum does not match (a flipped
//! byte, a length field that grew) or that is not a record at all is set aside, and reading
//! resumes at the next record header after it. Every byte set aside is kept in a quarantine
//! file next to its segment and reported; nothing read back is ever delivered unless its
//! checksum matched. Unknown files are warned about and left alone; a cursor file that holds
//! no cursor is ignored, one that holds an impossible number starts its target again from the
//! oldest spooled event (delivering again is what receivers tolerate; skipping is not).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};

use super::route::Parsed;
use super::spool::Event;

/// The start of every record.
pub const MAGIC: &[u8] = b"SOR2 ";
/// The start of a segment written full of zeros before its first record (`spool::files::Spare`):
/// the zeros after its last record are space not written yet, not damage.
pub const ZERO_FILLED: &[u8] = b"SOZ1 zero-filled segment\n";
/// The start of a recycled segment (`spool::files::Spare`): a file every target was done with,
/// taken again as the next segment instead of a new one filled with zeros. The marker is
/// `SOY1 <seq, 19 digits>\n`, as long as `ZERO_FILLED` so that records start at the same
/// place: records numbered below that seq are left from the file's earlier life, and the first
/// of them after the new ones ends what was written.
pub const RECYCLED: &[u8] = b"SOY1 ";

/// How long both segment markers are.
pub const MARKER_LEN: usize = 25;
const _: () = assert!(ZERO_FILLED.len() == MARKER_LEN);

/// The marker of a segment recycled for records numbered `from` and above.
pub fn recycled_marker(from: u64) -> Vec<u8> {
    let marker = format!("SOY1 {from:019}\n").into_bytes();
    debug_assert_eq!(marker.len(), MARKER_LEN);
    marker
}

/// The first number a recycled segment's records have (None when `bytes` is not one).
fn recycled_from(bytes: &[u8]) -> Option<u64> {
    let marker = bytes.get(..MARKER_LEN)?.strip_prefix(RECYCLED)?;
    let digits = marker.strip_suffix(b"\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The highest sequence number a spool uses: far beyond any spool's life (2^62 events), and
/// far from overflowing.
pub const MAX_SEQ: u64 = 1 << 62;

/// A record's header. Written from the event's own strings (no copy per record), read back
/// into owned ones.
#[derive(Serialize, Deserialize)]
struct Meta<'a> {
    seq: u64,
    id: Option<Cow<'a, str>>,
    received_ms: i64,
    content_type: Option<Cow<'a, str>>,
    signature: Option<Cow<'a, str>>,
    len: usize,
}

/// An event as one record, appended to `out`.
pub fn encode_into(event: &Event, out: &mut Vec<u8>) -> io::Result<()> {
    let meta = Meta {
        seq: event.seq,
        id: event.id.as_deref().map(Cow::Borrowed),
        received_ms: event.received_ms,
        content_type: event.content_type.as_deref().map(Cow::Borrowed),
        signature: event.signature.as_deref().map(Cow::Borrowed),
        len: event.body.len(),
    };
    out.reserve(MAGIC.len() + 9 + 160 + event.body.len());
    out.extend_from_slice(MAGIC);
    let crc_at = out.len();
    out.extend_from_slice(b"00000000 ");
    let meta_at = out.len();
    serde_json::to_writer(&mut *out, &meta).map_err(io::Error::other)?;
    let crc = checksum(&out[meta_at..], &event.body);
    write_hex(crc, &mut out[crc_at..crc_at + 8]);
    out.push(b'\n');
    out.extend_from_slice(&event.body);
    Ok(())
}

/// `n` as 8 lowercase hex digits, as `{n:08x}` writes it.
fn write_hex(n: u32, out: &mut [u8]) {
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(n >> (28 - 4 * i) & 0xf) as usize];
    }
}

/// An event as one record.
#[cfg(test)]
pub fn encode(event: &Event) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(event, &mut out)?;
    Ok(out)
}

fn checksum(meta: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(meta);
    h.update(b"\n");
    h.update(body);
    h.finalize()
}

/// A run of bytes that could not be read as records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub offset: usize,
    pub len: usize,
    pub why: &'static str,
}

/// Why a record could not be read.
pub(super) enum Unread {
    /// The bytes end inside it.
    Incomplete,
    Invalid(&'static str),
}

/// Why the last record of what was written could not be read.
const TORN: &str = "cut short at the end of what was written: most likely a crash while it was written (never acknowledged)";

/// The events of a segment, and the byte runs that are not events.
pub fn parse_segment(bytes: &[u8]) -> (Vec<Event>, Vec<Skipped>) {
    if let Some(from) = recycled_from(bytes) {
        return parse_recycled(bytes, from);
    }
    let mut events = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    let zero_filled = bytes.starts_with(ZERO_FILLED);
    let mut at = if zero_filled { ZERO_FILLED.len() } else { 0 };
    // Where a zero-filled segment's unwritten space starts (its end when there is none).
    let written = if zero_filled {
        bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(at, |last| last + 1)
    } else {
        bytes.len()
    };
    while at < written {
        let read = if bytes[at..].starts_with(MAGIC) {
            read_record(&bytes[at..])
        } else if bytes[at] == b'{' {
            read_legacy(&bytes[at..])
        } else {
            Err(Unread::Invalid("not a record: no record header here"))
        };
        match read {
            Ok((event, len)) => {
                events.push(event);
                at += len;
            }
            Err(unread) => {
                // A torn last record of a zero-filled segment: its bytes, not the zeros after.
                let next = next_header(bytes, at + 1).min(written);
                let why = match unread {
                    _ if zero_filled && next == written => TORN,
                    Unread::Incomplete if next == bytes.len() => {
                        "cut short at the end of the segment: most likely a crash while it was written (never acknowledged)"
                    }
                    Unread::Incomplete => {
                        "its length goes past the next record: a changed length field"
                    }
                    Unread::Invalid(why) => why,
                };
                // Runs next to each other are one run (a zero-filled stretch, say).
                match skipped.last_mut() {
                    Some(last) if last.offset + last.len == at && last.why == why => {
                        last.len += next - at
                    }
                    _ => skipped.push(Skipped {
                        offset: at,
                        len: next - at,
                        why,
                    }),
                }
                at = next;
            }
        }
    }
    (events, skipped)
}

/// The records of a recycled segment numbered `from` and above, each above the one before: the
/// first record that is not (left from the file's earlier life, and so are the bytes after
/// it) ends what was written. A record that does not check is set aside when a new record
/// follows it; at the end of what was written, only when it starts as a record does (a torn
/// last record), since the bytes of an earlier record cut in the middle by the new ones are
/// not damage.
fn parse_recycled(bytes: &[u8], from: u64) -> (Vec<Event>, Vec<Skipped>) {
    /// What the bytes at an offset of a recycled segment are.
    enum Found {
        New(Event, usize),
        EarlierLife,
        Unreadable(Unread),
    }
    let found = |at: usize, events: &[Event]| {
        let rest = &bytes[at..];
        if !rest.starts_with(MAGIC) {
            return Found::Unreadable(Unread::Invalid("not a record: no record header here"));
        }
        match read_record(rest) {
            Ok((event, _))
                if event.seq < from || events.last().is_some_and(|l| event.seq <= l.seq) =>
            {
                Found::EarlierLife
            }
            Ok((event, len)) => Found::New(event, len),
            Err(unread) => Found::Unreadable(unread),
        }
    };
    let mut events: Vec<Event> = Vec::new();
    let mut skipped = Vec::new();
    let mut at = MARKER_LEN;
    while at < bytes.len() {
        let unread = match found(at, &events) {
            Found::New(event, len) => {
                events.push(event);
                at += len;
                continue;
            }
            Found::EarlierLife => break,
            Found::Unreadable(unread) => unread,
        };
        let next = next_header(bytes, at + 1);
        let resumes = next < bytes.len() && matches!(found(next, &events), Found::New(..));
        if !resumes && !bytes[at..].starts_with(MAGIC) {
            break;
        }
        let why = match unread {
            _ if !resumes => TORN,
            Unread::Incomplete => "its length goes past the next record: a changed length field",
            Unread::Invalid(why) => why,
        };
        skipped.push(Skipped {
            offset: at,
            len: next - at,
            why,
        });
        if !resumes {
            break;
        }
        at = next;
    }
    (events, skipped)
}

/// Where the next record header could start at or after `from` (the end when none).
pub(super) fn next_header(bytes: &[u8], from: usize) -> usize {
    let find = |needle: &[u8]| {
        bytes
            .get(from..)
            .and_then(|rest| rest.windows(needle.len()).position(|w| w == needle))
            .map(|p| from + p)
    };
    let v2 = find(MAGIC);
    // A legacy record starts a line with its metadata.
    let legacy = find(b"\n{\"seq\":").map(|p| p + 1);
    match (v2, legacy) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(bytes.len()),
    }
}

/// The record at the start of `rest`, and its length.
pub(super) fn read_record(rest: &[u8]) -> Result<(Event, usize), Unread> {
    let header = MAGIC.len() + 9;
    if rest.len() < header {
        return Err(Unread::Incomplete);
    }
    let crc = std::str::from_utf8(&rest[MAGIC.len()..MAGIC.len() + 8])
        .ok()
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .filter(|_| rest[header - 1] == b' ')
        .ok_or(Unread::Invalid("a record header without its checksum"))?;
    let Some(newline) = rest[header..].iter().position(|&b| b == b'\n') else {
        return Err(Unread::Incomplete);
    };
    let meta_bytes = &rest[header..header + newline];
    let meta: Meta = serde_json::from_slice(meta_bytes).map_err(|_| {
        Unread::Invalid("a record whose metadata is not readable (its checksum cannot match)")
    })?;
    let body_at = header + newline + 1;
    let end = body_at.checked_add(meta.len).ok_or(Unread::Incomplete)?;
    if rest.len() < end {
        return Err(Unread::Incomplete);
    }
    let body = &rest[body_at..end];
    if checksum(meta_bytes, body) != crc {
        return Err(Unread::Invalid(
            "a record whose checksum does not match: a changed byte, or a length that no longer fits",
        ));
    }
    event(meta, body).map(|e| (e, end))
}

/// A record of an earlier version: metadata, newline, body; no checksum.
fn read_legacy(rest: &[u8]) -> Result<(Event, usize), Unread> {
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return Err(Unread::Incomplete);
    };
    let meta: Meta = serde_json::from_slice(&rest[..newline])
        .map_err(|_| Unread::Invalid("an unreadable record (an earlier version's format)"))?;
    let end = (newline + 1)
        .checked_add(meta.len)
        .ok_or(Unread::Incomplete)?;
    if rest.len() < end {
        return Err(Unread::Incomplete);
    }
    event(meta, &rest[newline + 1..end]).map(|e| (e, end))
}

fn event(meta: Meta, body: &[u8]) -> Result<Event, Unread> {
    if meta.seq == 0 || meta.seq > MAX_SEQ {
        return Err(Unread::Invalid(
            "a record with an impossible sequence number",
        ));
    }
    Ok(Event {
        seq: meta.seq,
        id: meta.id.map(Cow::into_owned),
        received_ms: meta.received_ms,
        content_type: meta.content_type.map(Cow::into_owned),
        signature: meta.signature.map(Cow::into_owned),
        body: Bytes::copy_from_slice(body),
        parsed: Parsed::default(),
    })
}

/// Bytes of a segment set aside, and the file that keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub segment: String,
    pub offset: usize,
    pub bytes: usize,
    pub why: &'static str,
    /// The quarantine file, in `events/`.
    pub kept_in: String,
}

/// What a spool held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Spooled events, in sequence order.
    pub events: Vec<Arc<Event>>,
    pub cursors: BTreeMap<String, u64>,
    /// Bytes that could not be read as events, kept aside.
    pub quarantined: Vec<Quarantined>,
    /// What else was odd (unknown files, cursor files that hold no cursor).
    pub warnings: Vec<String>,
    /// The highest number used before a recycled segment's records (its marker's, less one):
    /// numbers go on above it even when no record or cursor that high was kept.
    pub numbered_through: u64,
}

/// A segment that was read: its path and the highest sequence number in it.
pub type Sealed = (std::path::PathBuf, u64);

/// Whether a file of `events/` is one recovery knows.
fn known(name: &str) -> bool {
    name.ends_with(".log") || name.ends_with(".evt") || name.contains(".bad")
}

/// Reads every segment of `dir`: the events, quarantine files for what could not be read, the
/// segments (as sealed), and the number for the next segment.
pub fn read_segments(dir: &Path, recovered: &mut Recovered) -> io::Result<(Vec<Sealed>, u64)> {
    let mut sealed = Vec::new();
    let mut next_number = 0;
    let mut names: Vec<String> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if !known(&name) || !path.is_file() {
            recovered
                .warnings
                .push(format!("spool: unknown file events/{name}, left as it is"));
            continue;
        }
        let Some(stem) = name
            .strip_suffix(".log")
            .or_else(|| name.strip_suffix(".evt"))
        else {
            continue; // a quarantine file
        };
        if name.ends_with(".log")
            && let Ok(n) = stem.parse::<u64>()
        {
            next_number = next_number.max(n + 1);
        }
        let bytes = fs::read(&path)?;
        if let Some(from) = recycled_from(&bytes) {
            recovered.numbered_through = recovered.numbered_through.max(from.saturating_sub(1));
        }
        let (events, skipped) = parse_segment(&bytes);
        for s in skipped {
            let kept_in = format!("{name}.bad-{}", s.offset);
            let file = dir.join(&kept_in);
            if !file.exists() {
                super::spool::write_private_file(&file, &bytes[s.offset..s.offset + s.len])?;
            }
            recovered.quarantined.push(Quarantined {
                segment: name.clone(),
                offset: s.offset,
                bytes: s.len,
                why: s.why,
                kept_in,
            });
        }
        let max_seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
        recovered.events.extend(events.into_iter().map(Arc::new));
        sealed.push((path, max_seq));
    }
    recovered.events.sort_by_key(|e| e.seq);
    // Two records with one number (a copied segment): the first is kept.
    recovered.events.dedup_by_key(|e| e.seq);
    Ok((sealed, next_number))
}

/// Reads the cursor files of `dir` (see the module note for what is ignored).
pub fn read_cursors(dir: &Path, recovered: &mut Recovered) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type()?.is_file() || name.starts_with('.') {
            recovered.warnings.push(format!(
                "spool: cursors/{name} is not a cursor file; left as it is"
            ));
            continue;
        }
        let text = fs::read(entry.path())?;
        let parsed = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        match parsed {
            Some(seq) if seq <= MAX_SEQ => {
                recovered.cursors.insert(name, seq);
            }
            Some(_) => {
                recovered.warnings.push(format!(
                    "spool: the cursor of {name} holds an impossible sequence number: that target starts again from the oldest spooled event"
                ));
                recovered.cursors.insert(name, 0);
            }
            None => recovered.warnings.push(format!(
                "spool: cursors/{name} holds no cursor (not a number); ignored and left as it is"
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_is_written_as_eight_lowercase_hex_digits() {
        for n in [0, 1, 0xabc, 0x0123_4567, 0xdead_beef, u32::MAX] {
            let mut out = [0u8; 8];
            write_hex(n, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), format!("{n:08x}"));
        }
    }

    fn ev(seq: u64, body: &str) -> Event {
        Event {
            seq,
            id: Some(format!("evt_{seq}")),
            received_ms: 1,
            content_type: None,
            signature: Some("t=1,v1=ab".into()),
            body: Bytes::copy_from_slice(body.as_bytes()),
            parsed: Parsed::default(),
        }
    }

    fn segment(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for seq in 1..=n {
            starts.push(bytes.len());
            bytes.extend(encode(&ev(seq, &format!("{{\"id\":\"evt_{seq}\"}}"))).unwrap());
        }
        (bytes, starts)
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn records_round_trip() {
        let (bytes, _) = segment(3);
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(seqs(&events), [1, 2, 3]);
        assert!(skipped.is_empty());
        assert_eq!(events[1], ev(2, "{\"id\":\"evt_2\"}"));
    }

    #[test]
    fn a_flipped_body_byte_sets_aside_that_record_only() {
        let (mut bytes, starts) = segment(30);
        let at = starts[10] + 80;
        bytes[at] ^= 0x01;
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(events.len(), 29);
        assert!(!seqs(&events).contains(&11));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].offset, starts[10]);
        assert_eq!(skipped[0].len, starts[11] - starts[10]);
        assert!(skipped[0].why.contains("checksum"), "{}", skipped[0].why);
    }

    #[test]
    fn a_grown_length_or_bad_metadata_loses_no_later_record() {
        for corrupt in ["len", "meta"] {
            let (bytes, starts) = segment(30);
            let mut text = String::from_utf8(bytes).unwrap();
            let rec = &text[starts[5]..starts[6]];
            let bad = match corrupt {
                "len" => rec.replace("\"len\":14", "\"len\":9000"),
                _ => rec.replace("\"received_ms\":1", "\"received_ms\":x"),
            };
            assert_ne!(bad, rec);
            text.replace_range(starts[5]..starts[6], &bad);
            let (events, skipped) = parse_segment(text.as_bytes());
            assert_eq!(events.len(), 29, "{corrupt}");
            assert_eq!(
                seqs(&events)[5..],
                (7..=30).collect::<Vec<_>>()[..],
                "{corrupt}"
            );
            assert_eq!(skipped.len(), 1, "{corrupt}");
        }
    }

    #[test]
    fn zeros_and_a_torn_tail_are_kept_aside_and_named() {
        let (events, skipped) = parse_segment(&[0u8; 4096]);
        assert!(events.is_empty());
        assert_eq!(
            skipped,
            [Skipped {
                offset: 0,
                len: 4096,
                why: "not a record: no record header here"
            }]
        );
        let (bytes, starts) = segment(5);
        let torn = &bytes[..starts[4] + 20];
        let (events, skipped) = parse_segment(torn);
        assert_eq!(seqs(&events), [1, 2, 3, 4]);
        assert!(
            skipped[0].why.starts_with("cut short at the end"),
            "{}",
            skipped[0].why
        );
        // Zeros in the middle: the records on both sides survive.
        let mut middle = bytes[..starts[2]].to_vec();
        middle.extend([0u8; 300]);
        middle.extend(&bytes[starts[2]..]);
        let (events, skipped) = parse_segment(&middle);
        assert_eq!(seqs(&events), [1, 2, 3, 4, 5]);
        assert_eq!(skipped.len(), 1);
    }

    #[test]
    fn a_zero_filled_segment_ends_at_its_last_record() {
        let zero_filled = |records: &[u8]| {
            let mut bytes = ZERO_FILLED.to_vec();
            bytes.extend(records);
            bytes.extend([0u8; 4096]);
            bytes
        };
        let (events, skipped) = parse_segment(&zero_filled(&[]));
        assert!(events.is_empty() && skipped.is_empty(), "{skipped:?}");
        let (bytes, starts) = segment(5);
        let (events, skipped) = parse_segment(&zero_filled(&bytes));
        assert_eq!(seqs(&events), [1, 2, 3, 4, 5]);
        assert!(skipped.is_empty(), "{skipped:?}");
        // A body that ends with zero bytes is read whole.
        let mut nul = ev(1, "{}");
        nul.body = Bytes::from_static(b"{}\0\0");
        let (events, skipped) = parse_segment(&zero_filled(&encode(&nul).unwrap()));
        assert_eq!(events, [nul]);
        assert!(skipped.is_empty(), "{skipped:?}");
        // A torn last record: its bytes are set aside, not the zeros after them.
        let torn = &bytes[..starts[4] + 40];
        let (events, skipped) = parse_segment(&zero_filled(torn));
        assert_eq!(seqs(&events), [1, 2, 3, 4]);
        assert_eq!(
            skipped,
            [Skipped {
                offset: ZERO_FILLED.len() + starts[4],
                len: 40,
                why: "cut short at the end of what was written: most likely a crash while it was written (never acknowledged)"
            }]
        );
        // Zeros before records (a crash that kept later pages, not earlier ones) are set aside.
        let mut gap = vec![0u8; 100];
        gap.extend(&bytes);
        let (events, skipped) = parse_segment(&zero_filled(&gap));
        assert_eq!(seqs(&events), [1, 2, 3, 4, 5]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            (skipped[0].offset, skipped[0].len),
            (ZERO_FILLED.len(), 100)
        );
    }

    /// A segment that held records 1..=`old` (bodies of `old_body` bytes) recycled for
    /// records from `old + 1`, then written with `new` (the bytes of the new records).
    fn recycled(old: u64, old_body: usize, new: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = ZERO_FILLED.to_vec();
        let mut starts = Vec::new();
        for seq in 1..=old {
            starts.push(bytes.len());
            bytes.extend(encode(&ev(seq, &"o".repeat(old_body))).unwrap());
        }
        bytes[..MARKER_LEN].copy_from_slice(&recycled_marker(old + 1));
        bytes[MARKER_LEN..MARKER_LEN + new.len()].copy_from_slice(new);
        (bytes, starts)
    }

    /// Records `seqs`, with bodies of `body` bytes, and where each starts.
    fn records(seqs: std::ops::RangeInclusive<u64>, body: usize) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for seq in seqs {
            starts.push(bytes.len());
            bytes.extend(encode(&ev(seq, &"n".repeat(body))).unwrap());
        }
        (bytes, starts)
    }

    #[test]
    fn a_recycled_segment_ends_where_its_earlier_life_shows() {
        assert_eq!(recycled_marker(7).len(), MARKER_LEN);
        // Just recycled: every record is from its earlier life; nothing is read or set aside.
        let (bytes, _) = recycled(20, 100, &[]);
        let (events, skipped) = parse_segment(&bytes);
        assert!(events.is_empty() && skipped.is_empty(), "{skipped:?}");
        // New records that end inside an earlier one, or exactly where one starts.
        for new_body in [37, 100] {
            let (new, _) = records(21..=23, new_body);
            let (bytes, _) = recycled(20, 100, &new);
            let (events, skipped) = parse_segment(&bytes);
            assert_eq!(seqs(&events), [21, 22, 23], "bodies of {new_body}");
            assert!(skipped.is_empty(), "bodies of {new_body}: {skipped:?}");
        }
        // A torn last record is set aside (up to the next earlier record's header).
        let (new, starts) = records(21..=24, 37);
        let (bytes, old_starts) = recycled(20, 100, &new[..starts[3] + 30]);
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(seqs(&events), [21, 22, 23]);
        let torn_at = MARKER_LEN + starts[3];
        let next_old = *old_starts.iter().find(|&&o| o > torn_at).unwrap();
        assert_eq!(
            skipped,
            [Skipped {
                offset: torn_at,
                len: next_old - torn_at,
                why: TORN
            }]
        );
        // A changed byte among the new records: that record alone is set aside.
        let (mut new, starts) = records(21..=25, 37);
        new[starts[1] + 60] ^= 1;
        let (bytes, _) = recycled(20, 100, &new);
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(seqs(&events), [21, 23, 24, 25]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].offset, MARKER_LEN + starts[1]);
        assert!(skipped[0].why.contains("checksum"), "{}", skipped[0].why);
        // Records numbered below the marker's, or not above the one before, are its earlier
        // life, even when they check.
        let mut new = records(21..=22, 37).0;
        new.extend(records(22..=23, 37).0);
        let (bytes, _) = recycled(20, 100, &new);
        assert_eq!(seqs(&parse_segment(&bytes).0), [21, 22]);
        let (new, _) = records(5..=6, 37);
        let (bytes, _) = recycled(20, 100, &new);
        assert!(parse_segment(&bytes).0.is_empty());
        // A damaged marker is not taken for one: the segment is read as an ordinary one (the
        // marker set aside, the earlier records read: every target's cursor is past them, so
        // they are not delivered again), rather than lose the new records it may hold.
        let (mut bytes, _) = recycled(20, 100, &[]);
        bytes[10] = b'x';
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(seqs(&events), (1..=20).collect::<Vec<_>>());
        assert_eq!((skipped[0].offset, skipped[0].len), (0, MARKER_LEN));
    }

    #[test]
    fn an_earlier_versions_records_are_read() {
        let legacy = b"{\"seq\":4,\"id\":null,\"received_ms\":1,\"content_type\":null,\"signature\":null,\"len\":2}\n{}";
        let (mut bytes, _) = segment(2);
        bytes.extend_from_slice(legacy);
        let (events, skipped) = parse_segment(&bytes);
        assert_eq!(seqs(&events), [1, 2, 4]);
        assert!(skipped.is_empty());
        // Impossible numbers are not events.
        let huge = b"{\"seq\":18446744073709551615,\"id\":null,\"received_ms\":1,\"content_type\":null,\"signature\":null,\"len\":0}\n";
        assert!(parse_segment(huge).0.is_empty());
    }

    #[test]
    fn no_bytes_make_the_parser_panic() {
        let (bytes, _) = segment(4);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut strings = crate::fuzz::Strings::new(0x5b00_1001);
        for _ in 0..2000 {
            let m = strings.mutation(
                &text,
                &["SOR2 ", "\n", "{", "\"len\":", "9", "\0", "ffffffff "],
            );
            let _ = parse_segment(m.as_bytes());
            let cut = &bytes[..(m.len() % bytes.len())];
            let _ = parse_segment(cut);
        }
    }
}
