//! `stripe-ops fanout` with targets that do not keep up: one that holds every delivery until the
//! test lets it go (a developer's app paused in a debugger), one that takes connections and never
//! answers at all, beside two that answer at once. The fast ones get every event, the sender's
//! answers never wait for the slow ones (they say `pending`), and the slow one gets everything
//! once it is let go. Asserted on outcomes only: what each target received, what each answer
//! said, what `/status` counts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;
use crate::fanout::{Fanout, INCOMING, Recorder, post, signed, target};

const WAIT: Duration = Duration::from_secs(60);

/// A receiver that records each delivery when it starts and holds it until the file `release`
/// exists, then answers 200 (threaded: every delivery waits on its own).
const HOLDING: &str = r#"
import http.server, json, os, time
out, release = open(os.environ["OUT"], "a"), os.environ["RELEASE"]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        rid = json.loads(self.rfile.read(int(self.headers["Content-Length"]))).get("id")
        out.write(json.dumps({"started": rid}) + "\n"); out.flush()
        while not os.path.exists(release):
            time.sleep(0.02)
        out.write(json.dumps({"id": rid}) + "\n"); out.flush()
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Takes every connection and never reads or answers a byte.
const SILENT: &str = r#"
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
"#;

struct Holding {
    url: String,
    out: PathBuf,
    release: PathBuf,
    _proc: Proc,
}

impl Holding {
    fn start(dir: &Path) -> Holding {
        let (out, release) = (dir.join("slow.jsonl"), dir.join("release"));
        let mut cmd = python();
        cmd.arg("-c")
            .arg(HOLDING)
            .env("OUT", &out)
            .env("RELEASE", &release);
        let (proc, port) = spawn_announcing(cmd);
        Holding {
            url: format!("http://127.0.0.1:{port}/hook"),
            out,
            release,
            _proc: proc,
        }
    }

    fn answered(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["id"].as_str().map(str::to_owned))
            .collect()
    }
}

fn silent() -> (Proc, String) {
    let mut cmd = python();
    cmd.arg("-c").arg(SILENT);
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}/hook"))
}

/// A relay in `d` with `flags`, delivering to a recording target `a` and a silent one (kept
/// alive by the `Proc`).
fn beside_a_silent_target(d: &Path, flags: &[&str]) -> (Recorder, Proc, Fanout) {
    let a = Recorder::start(d, "a", None);
    let (silent_proc, silent_url) = silent();
    let targets = [target("a", &a), format!("silent={silent_url}")];
    let args = [
        &["--target", &targets[0], "--target", &targets[1]][..],
        flags,
    ]
    .concat();
    let relay = Fanout::start_local(d, &args);
    (a, silent_proc, relay)
}

fn target_status(relay: &Fanout, name: &str) -> Value {
    relay.status()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_slow_and_a_silent_target_hold_back_neither_the_fast_ones_nor_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let b = Recorder::start(d, "b", None);
    let slow = Holding::start(d);
    let (_silent_proc, silent_url) = silent();
    // Answers may wait an hour for first attempts, and an attempt may take an hour: only the
    // relay's judgement that a target does not keep up lets an answer go without it.
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("a", &a),
            "--target",
            &target("b", &b),
            "--target",
            &format!("slow={}", slow.url),
            "--target",
            &format!("silent={silent_url}"),
            "--summary-wait",
            "1h",
            "--timeout",
            "1h",
            "--in-flight",
            "4",
        ],
    );
    let events: Vec<(String, String, String)> = (0..32)
        .map(|_| signed("checkout.session.completed", INCOMING, &[]))
        .collect();
    // Four senders at once, eight events each.
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let senders: Vec<_> = events
            .chunks(8)
            .map(|chunk| {
                let webhook = relay.webhook.clone();
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(_, body, header)| post(&webhook, body, header))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|r| r.expect("every event is answered, none waits for the slow targets"))
            .collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        let by_name = |name: &str| {
            answer["targets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .cloned()
                .unwrap()
        };
        for fast in ["a", "b"] {
            assert_eq!(by_name(fast)["status"], 200, "{answer}");
        }
        for lagging in ["slow", "silent"] {
            let t = by_name(lagging);
            assert_eq!(t["ok"], false, "{answer}");
            assert_eq!(t["pending"], true, "{answer}");
        }
    }
    let ids: Vec<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    // The fast ones get every event while the slow one holds its first deliveries and the
    // silent one has not answered anything.
    a.wait_for(&ids);
    b.wait_for(&ids);
    assert!(slow.answered().is_empty());
    for name in ["slow", "silent"] {
        let t = target_status(&relay, name);
        assert_eq!(
            (t["delivered"].clone(), t["pending"].clone()),
            (0.into(), 32.into()),
            "{t}"
        );
    }
    poll("the fast ones' pending to drain", WAIT, || {
        ["a", "b"]
            .iter()
            .all(|n| target_status(&relay, n)["pending"] == 0)
            .then_some(())
    });

    // Let the slow one go: it gets every event; the silent one still holds the spool.
    std::fs::write(&slow.release, "").unwrap();
    poll("the slow target to get every event", WAIT, || {
        let got = slow.answered();
        ids.iter().all(|id| got.contains(id)).then_some(())
    });
    poll("the slow target to be done", WAIT, || {
        (target_status(&relay, "slow")["pending"] == 0).then_some(())
    });
    assert_eq!(target_status(&relay, "slow")["delivered"], 32);
    assert_eq!(
        relay.status()["spool"]["events"],
        32,
        "kept for the silent one"
    );
    relay.log_saying("target a ");
}

/// The same with the sender one event at a time: each answer comes although the silent target
/// took the first deliveries and never answered.
#[test]
fn one_event_at_a_time_is_answered_beside_a_silent_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, _silent, relay) =
        beside_a_silent_target(d, &["--summary-wait", "1h", "--timeout", "1h"]);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (id, body, header) = signed("invoice.paid", INCOMING, &[]);
        let (status, answer) = post(&relay.webhook, &body, &header).expect("answered");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["targets"][0]["name"], "a");
        assert_eq!(answer["targets"][0]["ok"], true, "{answer}");
        assert_eq!(answer["targets"][1]["pending"], true, "{answer}");
        ids.push(id);
    }
    a.wait_for(&ids);
    let silent = target_status(&relay, "silent");
    assert_eq!(silent["pending"], 20, "{silent}");
}

/// A target that never answers, with `--max-spool`: instead of the spool growing until the disk
/// is full (and every event is refused, to every target), the silent one gives up its oldest
/// events a segment at a time, the spool's files stay within the limit, and the fast target
/// gets every event. Each event carries Stripe's most metadata (50 keys of 500 characters), so
/// that 1,000 of them (about 31 MB) fill more than four 4 MiB segments.
#[test]
fn a_silent_target_gives_up_its_oldest_events_rather_than_fill_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The silent target's attempts never end: those holding the oldest segments are dropped.
    let (a, _silent, relay) = beside_a_silent_target(
        d,
        &[
            "--max-spool",
            "16MiB",
            "--timeout",
            "1h",
            "--in-flight",
            "2",
        ],
    );
    let metadata: serde_json::Map<String, Value> = (0..50)
        .map(|k| (format!("k{k}"), Value::from("m".repeat(500))))
        .collect();
    let set = format!("data.object.metadata={}", Value::from(metadata));
    let events: Vec<(String, String, String)> = (0..1_000)
        .map(|_| signed("checkout.session.completed", INCOMING, &[&set]))
        .collect();
    assert!(events[0].1.len() > 25_000, "{}", events[0].1.len());
    std::thread::scope(|s| {
        for chunk in events.chunks(250) {
            let webhook = relay.webhook.clone();
            s.spawn(move || {
                for (_, body, header) in chunk {
                    let (status, answer) = post(&webhook, body, header).expect("answered");
                    assert_eq!(status, 200, "{answer}");
                }
            });
        }
    });
    let ids: Vec<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    a.wait_for(&ids);

    let files = || -> Vec<u64> {
        std::fs::read_dir(d.join("spool/events"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .collect()
    };
    let silent = poll("the spool back within --max-spool", WAIT, || {
        let silent = target_status(&relay, "silent");
        (files().len() <= 4 && silent["gave_up"].as_u64() >= Some(500)).then_some(silent)
    });
    // Four files of 4 MiB (a sealed one may end with one record past it).
    let bytes: u64 = files().iter().sum();
    assert!(
        bytes <= (16 << 20) + 4 * 64 * 1024,
        "{bytes} bytes in {:?}",
        files()
    );
    assert_eq!(silent["delivered"], 0, "{silent}");
    assert_eq!(relay.status()["spool"]["max_bytes"], 16 << 20);
    let fast = target_status(&relay, "a");
    assert_eq!(
        (fast["delivered"].clone(), fast["gave_up"].clone()),
        (1_000.into(), 0.into()),
        "{fast}"
    );
    let log = relay.log_saying("target silent: GAVE UP on ");
    assert!(
        log.contains("more than --max-spool 16.0 MiB holds"),
        "{log}"
    );
}

#[test]
fn a_max_spool_below_four_segments_or_not_a_size_is_refused() {
    let args = [
        "fanout",
        "--listen",
        "127.0.0.1:0",
        "--target",
        "a=http://127.0.0.1:9/",
    ];
    let o = run(&[&args[..], &["--max-spool", "8MiB"]].concat());
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("the spool needs at least 16MiB"),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stripe-ops.toml");
    std::fs::write(&config, "[fanout]\nmax_spool = \"lots\"\n").unwrap();
    let o = bin()
        .args(args)
        .env("STRIPE_OPS_CONFIG", &config)
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("[fanout] max_spool \"lots\" in the config file: expected a size"),
        "{}",
        stderr(&o)
    );
}
