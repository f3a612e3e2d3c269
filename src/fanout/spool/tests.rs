//! The spool's unit tests: appending, reopening, rolling and retiring segments, reading back.

use super::*;

fn event(id: &str, body: &str) -> Event {
    Event {
        seq: 0,
        id: Some(id.to_owned()),
        received_ms: 1_700_000_000_000,
        content_type: Some("application/json; charset=utf-8".into()),
        signature: Some("t=1,v1=ab".into()),
        body: Bytes::copy_from_slice(body.as_bytes()),
        parsed: Parsed::default(),
    }
}

/// Appends one event durably; returns it with its number.
fn write(spool: &Spool, mut event: Event) -> Event {
    let appended = spool.append(std::slice::from_mut(&mut event));
    assert!(appended.error.is_none(), "{:?}", appended.error);
    assert_eq!(appended.written, 1);
    spool.sync().unwrap();
    event
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
    let a = write(&spool, event("evt_a", "{\"id\":\"evt_a\"}\n\u{e9}"));
    let b = write(&spool, event("evt_b", ""));
    assert_eq!(spool.create_cursor("one").unwrap(), 2);
    spool.write_cursor("two", 1);
    drop(spool);

    let (spool, recovered) = Spool::open(dir.path(), true).unwrap();
    let events: Vec<Event> = recovered.events.iter().map(|e| (**e).clone()).collect();
    assert_eq!(events, vec![a, b]);
    assert_eq!(recovered.cursors["one"], 2);
    assert_eq!(recovered.cursors["two"], 1);
    assert_eq!(spool.last_seq(), 2);
    write(&spool, event("evt_c", "{}"));
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

/// A spool of 600-byte segments holding nine events of about 270 bytes, two per segment: 1-2,
/// 3-4, 5-6 and 7-8 sealed, 9 in the current one.
fn nine_events_in_five_segments(dir: &Path, fsync: bool) -> Spool {
    let (spool, _) = Spool::open_with(dir, fsync, 600, super::super::Log::silent()).unwrap();
    let body = "x".repeat(150);
    for _ in 0..9 {
        write(&spool, event("evt", &body));
    }
    assert_eq!(spool.segments(), 5);
    spool
}

#[test]
fn segments_roll_and_leave_once_all_their_events_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let spool = nine_events_in_five_segments(dir.path(), true);
    spool.retire(4, Duration::ZERO);
    assert_eq!(spool.segments(), 3);
    // The first segment (a new file) is deleted; the second, made ahead, is kept to be
    // recycled as the next spare.
    let kept = "000000000001.log";
    assert_eq!(files(dir.path()).len(), 4);
    assert!(files(dir.path()).contains(&kept.to_owned()));
    spool.retire(9, Duration::from_secs(3600));
    assert_eq!(
        spool.segments(),
        1,
        "the current segment waits until it is idle"
    );
    spool.retire(9, Duration::ZERO);
    assert_eq!(files(dir.path()), [kept]);
    write(&spool, event("evt", "{}"));
    assert_eq!(files(dir.path()), [kept, "000000000005.log"]);
    drop(spool);
    assert_eq!(
        files(dir.path()),
        ["000000000005.log"],
        "deleted on closing"
    );
}

#[test]
fn beyond_the_limit_the_oldest_segments_a_target_still_needs_are_named_to_let_go() {
    let dir = tempfile::tempdir().unwrap();
    // Without fsync no segment is made ahead: the files are the sealed ones and the current.
    let spool = nine_events_in_five_segments(dir.path(), false);
    assert_eq!(spool.over(5, 0), None, "five files fit in five");
    assert_eq!(
        spool.over(4, 0),
        Some((5, 2)),
        "one too many: the oldest goes"
    );
    assert_eq!(spool.over(3, 0), Some((5, 4)));
    assert_eq!(
        spool.over(3, 2),
        Some((4, 4)),
        "a segment every target is done with is not counted: it goes anyway"
    );
    assert_eq!(spool.over(4, 4), None);
    assert_eq!(
        spool.over(1, 0),
        Some((5, 8)),
        "never the segment being written to"
    );
}

#[test]
fn max_spool_sizes_take_bytesize_units_and_leave_room_for_four_segments() {
    assert_eq!(parse_max_spool("512MiB"), Ok(512 << 20));
    assert_eq!(parse_max_spool(" 2GB "), Ok(2_000_000_000));
    assert_eq!(parse_max_spool("16 MiB"), Ok(MIN_MAX_SPOOL));
    assert_eq!(files_within(MIN_MAX_SPOOL + SEGMENT_BYTES - 1), 4);
    for bad in ["1MiB", "16000000", "lots", "-5GiB", ""] {
        assert!(parse_max_spool(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_sealed_segment_is_made_durable_by_the_next_sync_not_by_the_append_that_sealed_it() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open_with(dir.path(), true, 600, super::super::Log::silent()).unwrap();
    let body = "x".repeat(150);
    for _ in 0..5 {
        let mut e = event("evt", &body);
        assert!(spool.append(std::slice::from_mut(&mut e)).error.is_none());
    }
    // Two records per segment: three segments, two of them sealed, none synced yet.
    assert_eq!(spool.segments(), 3);
    assert_eq!(
        spool.unsynced_files().len(),
        3,
        "both sealed ones and the current one"
    );
    assert_eq!(spool.log().unsynced.len(), 0, "taken by the sync starting");
    // The sixth fills the third segment, the seventh seals it.
    for _ in 0..2 {
        let mut e = event("evt", &body);
        assert!(spool.append(std::slice::from_mut(&mut e)).error.is_none());
    }
    assert_eq!(spool.log().unsynced.len(), 1, "the segment it sealed");
    spool.sync().unwrap();
    assert!(spool.log().unsynced.is_empty());
    // Sealed and retired before any sync: its file is let go, not kept open for one.
    for _ in 0..2 {
        let mut e = event("evt", &body);
        assert!(spool.append(std::slice::from_mut(&mut e)).error.is_none());
    }
    assert_eq!(spool.log().unsynced.len(), 1);
    spool.retire(8, Duration::ZERO);
    assert!(spool.log().unsynced.is_empty());
}

#[test]
fn sequence_numbers_continue_after_everything_was_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), false).unwrap();
    for _ in 0..5 {
        write(&spool, event("evt", "{}"));
    }
    spool.retire(5, Duration::ZERO);
    spool.write_cursor("t", 5);
    drop(spool);
    let (spool, recovered) = Spool::open(dir.path(), false).unwrap();
    assert!(recovered.events.is_empty());
    assert_eq!(spool.last_seq(), 5);
}

#[cfg(unix)]
#[test]
fn the_spool_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("spool");
    let (spool, _) = Spool::open(&root, false).unwrap();
    spool.create_cursor("t").unwrap();
    write(&spool, event("evt_1", "{}"));
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
    write(&spool, event("evt_good", "{}"));
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
    assert_eq!(spool.last_seq(), 5);
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
    let (spool, _) = Spool::open_with(dir.path(), true, 2000, super::super::Log::silent()).unwrap();
    let spool = Arc::new(spool);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    write(&spool, event("evt", &"y".repeat(100)));
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
    write(&spool, event("evt", "{}"));
    let path = dir.path().join("events").join("000000000000.log");
    let mode = fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_busy_spool_appends_to_zero_filled_segments_made_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let segment = 4096;
    let (spool, _) =
        Spool::open_with(dir.path(), true, segment, super::super::Log::silent()).unwrap();
    let body = "x".repeat(300);
    let written: Vec<u64> = (0..40)
        .map(|_| write(&spool, event("evt", &body)).seq)
        .collect();
    // The segment being made now is finished here, so that every file is complete.
    if let Some(spare) = spool.log().spare.take() {
        spare.finish().unwrap();
    }
    let names = files(dir.path());
    assert!(names.len() >= 4, "{names:?}");
    // The first segment is a new empty file; the next ones were made ahead, full of zeros.
    let bytes = |name: &str| fs::read(dir.path().join("events").join(name)).unwrap();
    assert!(!bytes(&names[0]).starts_with(recover::ZERO_FILLED));
    for name in &names[1..] {
        let b = bytes(name);
        assert!(b.starts_with(recover::ZERO_FILLED), "{name}");
        assert_eq!(
            b.len() as u64,
            recover::ZERO_FILLED.len() as u64 + segment,
            "{name}"
        );
    }
    // Read back: every event, and nothing past the last record (the zeros are not read).
    let (events, at) = spool.read_from(1, u64::MAX, usize::MAX, None).unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), written);
    let at = at.unwrap();
    assert_eq!(at.seq, 41);
    assert_eq!((at.path.clone(), at.offset), {
        let log = spool.log();
        let current = log.current.as_ref().unwrap();
        (current.path.clone(), current.len)
    });
    drop(spool);
    assert_reads_back(dir.path(), &written);
}

/// Reopens the spool in `dir`: it reads back exactly `seqs`, and sets nothing aside.
fn assert_reads_back(dir: &Path, seqs: &[u64]) {
    let (_, recovered) = Spool::open(dir, true).unwrap();
    assert_eq!(
        recovered.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs
    );
    assert!(
        recovered.quarantined.is_empty(),
        "{:?}",
        recovered.quarantined
    );
}

#[test]
fn a_busy_spool_recycles_the_segments_every_target_is_done_with() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open_with(dir.path(), true, 4096, super::super::Log::silent()).unwrap();
    let body = "x".repeat(300);
    // Every target is done with each event but the last one written.
    for _ in 0..200 {
        let seq = write(&spool, event("evt", &body)).seq;
        spool.retire(seq - 1, Duration::from_secs(3600));
    }
    if let Some(spare) = spool.log().spare.take() {
        spare.finish().unwrap();
    }
    let names = files(dir.path());
    let bytes = |name: &str| fs::read(dir.path().join("events").join(name)).unwrap();
    let recycled: Vec<&String> = names
        .iter()
        .filter(|n| bytes(n).starts_with(recover::RECYCLED))
        .collect();
    // About 9 events to a segment: over 20 segments, of which only the first few were new.
    assert!(spool.log().next_number > 20);
    assert!(names.len() <= 3, "{names:?}");
    assert!(!recycled.is_empty(), "{names:?}");
    let current = spool.log().current.as_ref().unwrap().path.clone();
    assert!(bytes(current.to_str().unwrap()).starts_with(recover::RECYCLED));
    // Read back from the segment in use: its events, nothing of its earlier life.
    let first = spool.log().current.as_ref().unwrap().first_seq.unwrap();
    let (events, _) = spool.read_from(first, u64::MAX, usize::MAX, None).unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (first..=200).collect::<Vec<_>>()
    );
    // Reopened: the events of the segments left, nothing else, nothing set aside (the spare
    // just recycled holds only its earlier life).
    let kept = spool
        .log()
        .sealed
        .iter()
        .filter_map(|s| s.first_seq)
        .chain([first])
        .min()
        .unwrap();
    drop(spool);
    assert_reads_back(dir.path(), &(kept..=200).collect::<Vec<_>>());
}

#[test]
fn numbers_go_on_above_a_recycled_segments_marker() {
    // Just recycled for records from 100 (a crash before any was written, and no cursor saved
    // that high): its earlier records are not read, and no number below 100 is given again.
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    fs::create_dir_all(&events).unwrap();
    let mut bytes = recover::recycled_marker(100);
    for seq in 50..60 {
        let mut e = event("evt", "{}");
        e.seq = seq;
        recover::encode_into(&e, &mut bytes).unwrap();
    }
    fs::write(events.join("000000000007.log"), bytes).unwrap();
    let (spool, recovered) = Spool::open(dir.path(), true).unwrap();
    assert!(recovered.events.is_empty());
    assert!(recovered.quarantined.is_empty());
    assert_eq!(spool.last_seq(), 99);
    assert_eq!(write(&spool, event("evt", "{}")).seq, 100);
}

#[test]
fn a_quiet_spool_makes_no_segment_ahead() {
    for fsync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) =
            Spool::open_with(dir.path(), fsync, 4096, super::super::Log::silent()).unwrap();
        let making = || spool.log().spare.is_some();
        write(&spool, event("evt", &"x".repeat(1000)));
        assert!(!making(), "below half a segment (fsync {fsync})");
        write(&spool, event("evt", &"x".repeat(1500)));
        assert_eq!(making(), fsync, "half full (fsync {fsync})");
    }
}
