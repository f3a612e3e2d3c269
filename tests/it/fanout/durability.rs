//! Nothing the relay answered 200 is lost: a target that is down gets every event in order once
//! it is back, a SIGKILL mid-stream and a restart lose nothing, an event older than `--max-age`
//! is given up and leaves the spool, a spool that cannot grow refuses events (503, counted)
//! rather than keeping them in memory, and a SIGKILL while appending to a zero-filled or a
//! recycled segment loses nothing either, nor brings back what a recycled one held before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// A sender posting signed events without pause from a thread of its own; only the events
/// answered 200 count as handed over.
struct Stream {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Stream {
    fn start(webhook: &str, event_type: &'static str, sets: Vec<String>) -> Stream {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (theirs, stopped, webhook) = (acked.clone(), stop.clone(), webhook.to_owned());
        let thread = std::thread::spawn(move || {
            let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
            while !stopped.load(Ordering::Relaxed) {
                let (id, body, header) = signed(event_type, INCOMING, &sets);
                if let Ok((200, _)) = post(&webhook, &body, &header) {
                    theirs.lock().unwrap().push(id);
                }
            }
        });
        Stream {
            acked,
            stop,
            thread,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops sending; the ids of every event answered 200.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.acked.lock().unwrap().clone()
    }
}

#[test]
fn a_target_that_is_down_gets_every_event_in_order_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = Recorder::start(d, "live", None);
    let late_port = free_port();
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("live", &live),
            "--target",
            &format!("late=http://127.0.0.1:{late_port}/hook"),
            "--retry-base",
            "20ms",
            "--retry-max",
            "200ms",
        ],
    );
    let mut sent = Vec::new();
    for i in 0..12 {
        let (id, body, header) = signed("customer.created", INCOMING, &[]);
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200, "{answer}");
        let late = &answer["targets"][0];
        assert_eq!(late["name"], "late", "targets are listed by name");
        assert_eq!(late["ok"], false, "{answer}");
        if i == 0 {
            assert!(
                late["error"]
                    .as_str()
                    .unwrap()
                    .contains("could not connect"),
                "{answer}"
            );
        }
        sent.push(id);
    }
    live.wait_for(&sent);
    let late = relay.target("late");
    assert_eq!(late["pending"], 12, "{late}");
    assert_eq!(late["delivered"], 0);
    assert!(late["failing_since"].is_string(), "{late}");
    assert!(
        late["last_error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
    assert_eq!(relay.status()["spool"]["events"], 12);

    let back = Recorder::start_with(d, "late", None, late_port, &[]);
    let got = back.wait_for(&sent);
    let mut first_seen: Vec<String> = Vec::new();
    for r in &got {
        let id = r["id"].as_str().unwrap().to_owned();
        if !first_seen.contains(&id) {
            first_seen.push(id);
        }
    }
    assert_eq!(first_seen, sent, "delivered out of order");
    relay.wait_spool_empty();
    let late = relay.target("late");
    assert_eq!(late["delivered"], 12);
    assert_eq!(late["failing_since"], Value::Null);
    relay.log_saying("target late");
}

#[test]
fn killed_with_sigkill_mid_stream_and_restarted_it_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let b_secret = secret_file(d, "b", SECRET_B);
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let c_port = free_port();
    let listen = format!("127.0.0.1:{}", free_port());
    let spool = d.join("spool");
    let incoming = secret_file(d, "incoming", INCOMING);
    let args_owned = [
        "--verify-secret-file".to_owned(),
        incoming,
        "--listen".into(),
        listen,
        "--spool".into(),
        spool.display().to_string(),
        "--target".into(),
        target("a", &a),
        "--target".into(),
        target("b", &b),
        "--target-secret-file".into(),
        format!("b={b_secret}"),
        "--target".into(),
        format!("c=http://127.0.0.1:{c_port}/hook"),
        "--retry-base".into(),
        "20ms".into(),
        "--retry-max".into(),
        "200ms".into(),
    ];
    let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
    let mut relay = Fanout::start(d, &args);
    let sender = Stream::start(&relay.webhook, "payment_intent.succeeded", Vec::new());
    let count = || sender.acked();
    poll("20 events answered", WAIT, || (count() >= 20).then_some(()));
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1, "killed by a signal");
    let before_restart = count();

    let relay = Fanout::start(d, &args);
    let recovered = relay.start["recovered"].as_u64().unwrap();
    assert!(
        recovered >= 20,
        "target c was down, so at least the 20 answered events are still spooled: {recovered}"
    );
    poll("more events after the restart", WAIT, || {
        (count() >= before_restart + 10).then_some(())
    });
    let all = sender.stop();
    let c = Recorder::start_with(d, "c", None, c_port, &[]);
    for r in [&a, &b, &c] {
        r.wait_for(&all);
    }
    assert!(b.received().iter().all(|r| r["valid"] == true));
    relay.wait_spool_empty();
    wait_no_segments(&spool);
}

#[test]
fn an_event_older_than_max_age_is_given_up_and_leaves_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &format!("gone={}/hook", closed_url()),
            "--max-age",
            "300ms",
            "--retry-base",
            "20ms",
            "--retry-max",
            "50ms",
        ],
    );
    let (id, body, header) = signed("invoice.payment_failed", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    poll("the event to be given up", WAIT, || {
        (relay.target("gone")["gave_up"] == 1).then_some(())
    });
    relay.wait_spool_empty();
    let gone = relay.target("gone");
    assert_eq!(gone["delivered"], 0);
    assert_eq!(gone["pending"], 0);
    assert!(gone["failed_attempts"].as_u64().unwrap() >= 1);
    relay.log_saying(&format!("target gone {id} #1: GAVE UP, older than max-age"));
}

/// A spool that cannot grow (files of at most 32 KiB: `ulimit -f`, with SIGXFSZ ignored so the
/// write fails with EFBIG rather than killing the relay): each refused event is answered 503,
/// dropped by every target (its sender retries it) and counted, never kept in memory.
#[test]
fn events_the_full_spool_refuses_are_dropped_and_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"")
        .arg(bin_path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("STRIPE_OPS_CONFIG")
        .stdin(Stdio::null());
    let spool = d.join("spool");
    let relay = Fanout::start_with(
        cmd,
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            // A target that is down: what it has not got stays queued for it.
            "--target",
            "down=http://127.0.0.1:1/",
            "--verify-secret-file",
            &incoming,
        ],
    );
    let pid: u32 = relay.proc.0.id();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let pad = format!("data.object.description={}", "p".repeat(8000));
    let (mut spooled, mut refused) = (0u64, 0u64);
    for _ in 0..3000 {
        let (_, body, header) = signed("customer.created", INCOMING, &[&pad]);
        match post(&relay.webhook, &body, &header).unwrap().0 {
            200 => spooled += 1,
            503 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(refused > 2900, "{spooled} spooled, {refused} refused");
    let status = poll("the refusals counted and dropped", WAIT, || {
        let s = relay.status();
        (s["refused_not_spooled"] == refused && s["targets"][0]["pending"] == spooled).then_some(s)
    });
    let after = rss();
    eprintln!("fanout RSS: {before} KiB before, {after} KiB after {refused} refused events");
    // Kept, 3,000 events of 8 KB would be 24 MB and more.
    assert!(after < before + 12 * 1024, "{status}");
    relay.log_saying("NOT SPOOLED");
}

/// A relay's arguments: its spool, incoming signatures verified, one target `NAME=URL`.
fn spool_args(spool: &Path, incoming: &str, target: &str) -> [String; 8] {
    [
        "--listen",
        "127.0.0.1:0",
        "--spool",
        spool.to_str().unwrap(),
        "--target",
        target,
        "--verify-secret-file",
        incoming,
    ]
    .map(str::to_owned)
}

/// A busy relay appends to segments made ahead full of zeros (`docs/SPOOL.md`): killed while
/// appending to one, it recovers every answered event and sets nothing aside (the zeros after
/// the last record are space never written, not damage).
#[test]
fn killed_while_appending_to_a_zero_filled_segment_it_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spool = d.join("spool");
    let incoming = secret_file(d, "incoming", INCOMING);
    let args = |target: &str| spool_args(&spool, &incoming, target);
    let down = args("t=http://127.0.0.1:1/");
    let mut relay = Fanout::start(d, &down.each_ref().map(String::as_str));
    let pad = format!("data.object.description={}", "p".repeat(8000));
    let sender = Stream::start(&relay.webhook, "customer.created", vec![pad]);
    let events = spool.join("events");
    let zero_filled_in_use = || {
        let names = std::fs::read_dir(&events).unwrap().count();
        // The first segment is a plain file; the second was made ahead and is written to
        // once the first is full (4 MiB); a third is made when the second is half full.
        (names >= 3).then_some(())
    };
    poll("a zero-filled segment written to", WAIT, zero_filled_in_use);
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1, "killed by a signal");
    let all = sender.stop();

    let r = Recorder::start(d, "t", None);
    let relay = Fanout::start(d, &args(&target("t", &r)).each_ref().map(String::as_str));
    assert!(
        relay.start["recovered"].as_u64().unwrap() >= all.len() as u64,
        "{}",
        relay.start
    );
    assert_eq!(relay.status()["spool_quarantined"]["runs"], 0);
    r.wait_for(&all);
}

/// The records of a recycled segment file (`SOY1 <N>`): N, and the (seq, id) of every record
/// it holds that checks as a record, in file order; None for another file.
fn recycled_records(bytes: &[u8]) -> Option<(u64, Vec<(u64, String)>)> {
    let marker = std::str::from_utf8(bytes.get(..25)?).ok()?;
    let from: u64 = marker.strip_prefix("SOY1 ")?.trim_end().parse().ok()?;
    let mut found = Vec::new();
    let mut at = 25;
    while let Some(p) = bytes[at..].windows(5).position(|w| w == b"SOR2 ") {
        let start = at + p + 14;
        let Some(end) = bytes[start..].iter().position(|&b| b == b'\n') else {
            break;
        };
        if let Ok(meta) = serde_json::from_slice::<Value>(&bytes[start..start + end]) {
            let seq = meta["seq"].as_u64().unwrap_or(0);
            let id = meta["id"].as_str().unwrap_or_default().to_owned();
            found.push((seq, id));
        }
        at = start + end;
    }
    Some((from, found))
}

/// A busy relay whose target keeps up recycles the segments it is done with (`docs/SPOOL.md`):
/// killed while appending to a recycled one, it recovers every answered event, sets nothing
/// aside (what follows the new records is the file's earlier life, not damage), and delivers
/// none of the events that file held before: the target had them already.
#[test]
fn killed_while_appending_to_a_recycled_segment_it_loses_nothing_and_brings_back_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spool = d.join("spool");
    let incoming = secret_file(d, "incoming", INCOMING);
    let r = Recorder::start(d, "t", None);
    let args = |target: &str| spool_args(&spool, &incoming, target);
    let first = args(&target("t", &r));
    let mut relay = Fanout::start(d, &first.each_ref().map(String::as_str));
    let pad = format!("data.object.description={}", "p".repeat(8000));
    let sender = Stream::start(&relay.webhook, "customer.created", vec![pad]);
    let events = spool.join("events");
    // A recycled segment in use: new records after its marker, its earlier ones after them.
    let recycled_in_use = || {
        std::fs::read_dir(&events).unwrap().find_map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).ok()?;
            let (from, records) = recycled_records(&bytes)?;
            let new = records.iter().take_while(|(seq, _)| *seq >= from).count();
            let earlier: Vec<String> = records
                .iter()
                .filter(|(seq, _)| *seq < from)
                .map(|(_, id)| id.clone())
                .collect();
            (new >= 5 && !earlier.is_empty()).then_some(earlier)
        })
    };
    let earlier = poll("a recycled segment written to", WAIT, recycled_in_use);
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1, "killed by a signal");
    let all = sender.stop();
    let before = r.ids();
    assert!(
        earlier.iter().all(|id| before.contains(id)),
        "the earlier life of the recycled segment was delivered before"
    );

    // The same target (its cursor) at a new recorder, which sees only what comes after.
    let after = Recorder::start(d, "t2", None);
    let second = args(&target("t", &after));
    let relay = Fanout::start(d, &second.each_ref().map(String::as_str));
    assert_eq!(relay.status()["spool_quarantined"]["runs"], 0);
    let missing: Vec<String> = all
        .iter()
        .filter(|id| !before.contains(id))
        .cloned()
        .collect();
    after.wait_for(&missing);
    relay.wait_spool_empty();
    let again: Vec<String> = after
        .ids()
        .into_iter()
        .filter(|id| earlier.contains(id))
        .collect();
    assert!(
        again.is_empty(),
        "delivered again from a recycled segment's earlier life: {again:?}"
    );
}
