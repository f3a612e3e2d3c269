//! The spool's recovery on real files: 30 events answered 200 by a real `fanout` whose target is
//! down, the relay stopped, the spool corrupted on disk (a segment zero-filled, a record's
//! length grown, a metadata byte changed, a body byte flipped, a cursor at the maximum, a stray
//! file), then a second real `fanout` run with the target up. Every readable event is delivered,
//! only the damaged record is set aside (kept, warned, counted), and nothing damaged is
//! delivered with a fresh signature.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;
use crate::fanout::{Fanout, INCOMING, Recorder, post, secret_file, signed};

const EVENTS: usize = 30;

/// A spool in `dir/spool` holding 30 answered events for target `t`, which was down, and the
/// ids in order, and the port `t` will listen on.
fn spooled(dir: &Path) -> (Vec<String>, u16) {
    let port = free_port();
    let mut relay = relay(dir, port);
    let mut ids = Vec::new();
    for _ in 0..EVENTS {
        let (id, body, header) = signed("invoice.paid", INCOMING, &[]);
        let (status, _) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200);
        ids.push(id);
    }
    relay.signal("TERM");
    assert_eq!(relay.wait_exit(), 0);
    (ids, port)
}

fn relay(dir: &Path, port: u16) -> Fanout {
    let incoming = secret_file(dir, "incoming", INCOMING);
    Fanout::start_local(
        dir,
        &[
            "--verify-secret-file",
            &incoming,
            "--target",
            &format!("t=http://127.0.0.1:{port}/hook"),
            "--retry-base",
            "20ms",
            "--retry-max",
            "100ms",
        ],
    )
}

fn segment(dir: &Path) -> PathBuf {
    let events = dir.join("spool/events");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 1, "one segment: {logs:?}");
    logs.remove(0)
}

/// The byte offsets where each record starts.
fn records(bytes: &[u8]) -> Vec<usize> {
    bytes
        .windows(5)
        .enumerate()
        .filter(|(_, w)| *w == b"SOR2 ")
        .map(|(i, _)| i)
        .collect()
}

/// Restarts with the target up; returns the ids it received once the spool settled, the
/// relay's log and its status.
fn recover(dir: &Path, port: u16, expect: usize) -> (Vec<String>, String, Value) {
    let target = Recorder::start_with(dir, "t", None, port, &[]);
    let relay = relay(dir, port);
    let got = poll(
        "the readable events to arrive",
        std::time::Duration::from_secs(30),
        || {
            let ids = target.ids();
            (ids.len() >= expect).then_some(ids)
        },
    );
    relay.wait_spool_empty();
    (got, relay.log(), relay.status())
}

#[test]
fn each_corruption_sets_aside_only_what_it_damaged() {
    type Corrupt = fn(&mut Vec<u8>) -> usize;
    // Each returns which event (by index) it damaged, or EVENTS for none.
    let cases: [(&str, Corrupt, usize); 4] = [
        (
            "grown length",
            |b| {
                let r = records(b);
                let meta_end = r[9] + b[r[9]..].iter().position(|&x| x == b'\n').unwrap();
                let text = String::from_utf8(b[r[9]..meta_end].to_vec()).unwrap();
                let at = text.find("\"len\":").unwrap() + 6;
                b.splice(r[9] + at..r[9] + at, *b"9");
                9
            },
            EVENTS - 1,
        ),
        (
            "metadata byte",
            |b| {
                let r = records(b);
                let at = r[4]
                    + b[r[4]..]
                        .windows(13)
                        .position(|w| w == b"\"received_ms\"")
                        .unwrap()
                    + 15;
                b[at] = b'x';
                4
            },
            EVENTS - 1,
        ),
        (
            "body byte",
            |b| {
                let r = records(b);
                let body = r[20] + b[r[20]..].iter().position(|&x| x == b'\n').unwrap() + 40;
                b[body] ^= 0x20;
                20
            },
            EVENTS - 1,
        ),
        (
            "zero fill",
            |b| {
                b.iter_mut().for_each(|x| *x = 0);
                EVENTS
            },
            0,
        ),
    ];
    for (name, corrupt, delivered) in cases {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ids, port) = spooled(d);
        let seg = segment(d);
        let mut bytes = std::fs::read(&seg).unwrap();
        let damaged = corrupt(&mut bytes);
        std::fs::write(&seg, &bytes).unwrap();
        if delivered == 0 {
            // Nothing readable: the relay starts, warns, and keeps the bytes.
            let relay = relay(d, port);
            assert_eq!(relay.start["recovered"], 0, "{name}");
            relay.log_saying("not a readable event");
            let status = relay.status();
            assert_eq!(status["spool_quarantined"]["runs"], 1, "{name}");
            assert_eq!(status["spool_quarantined"]["bytes"], bytes.len(), "{name}");
            let kept = std::fs::read_dir(d.join("spool/events"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .find(|n| n.contains(".bad-"))
                .expect("a quarantine file");
            assert_eq!(
                std::fs::read(d.join("spool/events").join(kept)).unwrap(),
                bytes
            );
            continue;
        }
        let (got, log, status) = recover(d, port, delivered);
        let mut want = ids.clone();
        want.remove(damaged);
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(
            sorted, want_sorted,
            "{name}: every other event, once at least"
        );
        assert!(
            !got.contains(&ids[damaged]),
            "{name}: the damaged event was delivered"
        );
        assert!(log.contains("not a readable event"), "{name}: {log}");
        assert_eq!(status["spool_quarantined"]["runs"], 1, "{name}: {status}");
    }
}

#[test]
fn a_cursor_at_the_maximum_and_a_stray_file_neither_lose_nor_stop_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ids, port) = spooled(d);
    std::fs::write(d.join("spool/cursors/t"), format!("{}\n", u64::MAX)).unwrap();
    std::fs::write(d.join("spool/cursors/notes.txt"), "not a cursor").unwrap();
    let (got, log, _) = recover(d, port, EVENTS);
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(sorted, want);
    assert!(log.contains("impossible sequence number"), "{log}");
    assert!(log.contains("cursors/notes.txt holds no cursor"), "{log}");
}
