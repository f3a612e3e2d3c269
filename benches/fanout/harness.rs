//! What every part of the relay bench shares: local targets that count what reaches them,
//! relays as processes of their own (this build, an earlier build, the Node relay in
//! `scripts/node-relay.js`), the senders, and the readings of a process from `/proc`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hdrhistogram::Histogram;
use stripe_ops::webhook::fixtures::{Catalog, Prepared, RenderOptions};
use stripe_ops::webhook::signature::Signer;

/// The secret the sender signs with and stripe-ops verifies.
pub const INCOMING: &str = "whsec_benchINCOMINGbench0123456789abcd";
/// The own secret of the re-signed target.
pub const TARGET_SECRET: &str = "whsec_benchTARGETbench0123456789abcdef";

pub fn env<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// `2 cores, load average 1.2 0.9 0.8`: the machine a line was measured on.
pub fn machine() -> String {
    format!(
        "{} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// How a local target answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Fast,
    After(Duration),
    Never,
}

/// When each event left the sender, and the sender-to-target latencies seen since the last
/// reset, at the targets that answer at once (only while timing: finding the id costs a parse
/// per delivery).
#[derive(Default)]
pub struct Clock {
    timing: AtomicBool,
    sent: Mutex<HashMap<String, Instant>>,
    arrivals: Mutex<Option<Histogram<u64>>>,
}

impl Clock {
    pub fn timing() -> Arc<Clock> {
        let clock = Clock::default();
        clock.set_timing(true);
        Arc::new(clock)
    }

    /// Starts or stops timing (a closed loop at full speed is measured without its cost).
    pub fn set_timing(&self, on: bool) {
        self.timing.store(on, Ordering::SeqCst);
    }

    fn sending(&self, id: &str) {
        if self.timing.load(Ordering::Relaxed) {
            self.sent
                .lock()
                .unwrap()
                .insert(id.to_owned(), Instant::now());
        }
    }

    fn arrived(&self, body: &[u8]) {
        if !self.timing.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        #[derive(serde::Deserialize)]
        struct IdOnly<'a> {
            #[serde(borrow)]
            id: &'a str,
        }
        if let Ok(e) = serde_json::from_slice::<IdOnly>(body)
            && let Some(at) = self.sent.lock().unwrap().get(e.id)
        {
            let us = now.duration_since(*at).as_micros() as u64;
            if let Some(h) = self.arrivals.lock().unwrap().as_mut() {
                h.saturating_record(us.max(1));
            }
        }
    }

    /// Starts a new measurement: returns the arrivals recorded since the last one.
    pub fn reset(&self) -> Histogram<u64> {
        self.sent.lock().unwrap().clear();
        self.arrivals
            .lock()
            .unwrap()
            .replace(histogram())
            .unwrap_or_else(histogram)
    }
}

/// Local targets on loopback, each counting the deliveries that reached it.
pub struct Targets {
    pub urls: Vec<String>,
    counts: Vec<Arc<AtomicU64>>,
}

impl Targets {
    pub async fn start(answers: &[Answer], clock: &Arc<Clock>) -> Targets {
        let mut urls = Vec::new();
        let mut counts = Vec::new();
        for answer in answers {
            let count = Arc::new(AtomicU64::new(0));
            urls.push(target(*answer, count.clone(), clock.clone()).await);
            counts.push(count);
        }
        Targets { urls, counts }
    }

    pub fn count(&self, i: usize) -> u64 {
        self.counts[i].load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::SeqCst);
        }
    }

    /// Waits until every target in `which` got `n` deliveries (polling, within `within`).
    pub async fn wait(&self, which: &[usize], n: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if which.iter().all(|&i| self.count(i) >= n) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn target(answer: Answer, count: Arc<AtomicU64>, clock: Arc<Clock>) -> String {
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let (count, clock) = (count.clone(), clock.clone());
            async move {
                if matches!(answer, Answer::Fast) {
                    clock.arrived(&body);
                }
                count.fetch_add(1, Ordering::SeqCst);
                match answer {
                    Answer::Fast => {}
                    Answer::After(d) => tokio::time::sleep(d).await,
                    Answer::Never => std::future::pending::<()>().await,
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A relay running as a process of its own, stopped (SIGTERM) when dropped.
pub struct Relay {
    pub name: String,
    pub webhook: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// One target of a stripe-ops relay, written to its config file.
pub struct TargetConfig {
    pub url: String,
    pub resigned: bool,
    /// The value of `data.object.metadata.site` it takes (a route), or every event.
    pub site: Option<String>,
}

/// Three fast targets (the third re-signed by stripe-ops), a relay of each build in front of
/// them, and the Node relay last: the setting of parts `compare` and `paced`.
pub async fn three_targets_and_relays(clock: &Arc<Clock>) -> (Targets, Vec<Relay>) {
    let targets = Targets::start(&[Answer::Fast; 3], clock).await;
    let configs: Vec<TargetConfig> = targets
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| TargetConfig {
            url: url.clone(),
            resigned: i == 2,
            site: None,
        })
        .collect();
    let mut relays: Vec<Relay> = builds()
        .iter()
        .map(|b| Relay::stripe_ops(&b.name, &b.bin, &configs, b.flags))
        .collect();
    relays.push(Relay::node(&targets.urls));
    (targets, relays)
}

impl Relay {
    /// `stripe-ops fanout` (the binary `bin`) with its targets in a config file, verifying
    /// incoming signatures, its spool fsync'd in a fresh folder; its log goes to
    /// `FANOUT_BENCH_LOG` (a folder) or nowhere.
    pub fn stripe_ops(name: &str, bin: &Path, targets: &[TargetConfig], extra: &[&str]) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let verify = dir.path().join("incoming.whsec");
        std::fs::write(&verify, INCOMING).unwrap();
        let own = dir.path().join("target.whsec");
        std::fs::write(&own, TARGET_SECRET).unwrap();
        let mut config = String::from("[fanout]\n");
        for (i, t) in targets.iter().enumerate() {
            config.push_str(&format!(
                "[[fanout.target]]\nname = \"t{i}\"\nurl = \"{}\"\n",
                t.url
            ));
            if t.resigned {
                config.push_str(&format!("secret_file = \"{}\"\n", own.display()));
            }
            if let Some(site) = &t.site {
                config.push_str(&format!(
                    "match = {{ \"data.object.metadata.site\" = \"{site}\" }}\n"
                ));
            }
        }
        let config_file = dir.path().join("stripe-ops.toml");
        std::fs::write(&config_file, config).unwrap();
        let spool = dir.path().join("spool");
        let mut cmd = Command::new(bin);
        for pair in std::env::var("FANOUT_BENCH_RELAY_ENV")
            .unwrap_or_default()
            .split(',')
        {
            if let Some((k, v)) = pair.split_once('=') {
                cmd.env(k, v);
            }
        }
        cmd.env("STRIPE_OPS_CONFIG", &config_file)
            .args(["--json", "fanout", "--listen", "127.0.0.1:0", "--spool"])
            .arg(&spool)
            .arg("--verify-secret-file")
            .arg(&verify)
            .args(extra);
        let child = spawn(cmd, name);
        let (child, start) = child;
        let start: serde_json::Value = serde_json::from_str(&start)
            .unwrap_or_else(|e| panic!("{name}: start line {start:?}: {e}"));
        Relay {
            name: name.to_owned(),
            webhook: start["webhook"].as_str().unwrap().to_owned(),
            child,
            _dir: dir,
        }
    }

    /// The Node relay of `scripts/node-relay.js`.
    pub fn node(targets: &[String]) -> Relay {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/node-relay.js");
        let mut cmd = Command::new("node");
        cmd.arg(script).args(targets);
        let (child, port) = spawn(cmd, "node");
        Relay {
            name: "node".into(),
            webhook: format!("http://127.0.0.1:{}/webhook", port.trim()),
            child,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time of the process so far (`/proc/PID/stat`, clock ticks).
    pub fn cpu(&self) -> Duration {
        let (user, system) = cpu_of(self.pid());
        user + system
    }

    /// The system part of `cpu`: the kernel's work for the process (its sockets, its disk).
    pub fn system_cpu(&self) -> Duration {
        cpu_of(self.pid()).1
    }

    /// Resident memory (`/proc/PID/status` VmRSS), KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a relay and reads its first line of stdout.
fn spawn(mut cmd: Command, name: &str) -> (Child, String) {
    let log = match std::env::var_os("FANOUT_BENCH_LOG") {
        Some(dir) => Stdio::from(
            std::fs::File::create(PathBuf::from(dir).join(format!("{name}.log"))).unwrap(),
        ),
        None => Stdio::null(),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

/// User and system CPU time of the process so far.
fn cpu_of(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the
    // 12th and stime the 13th (proc(5): fields 14 and 15).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let time =
        |i: usize| Duration::from_micros(fields.get(i).copied().unwrap_or(0) * 1_000_000 / hz);
    (time(0), time(1))
}

/// Signed events, each with a fresh id and signature, as Stripe sends them.
pub struct Events {
    templates: Vec<Prepared>,
    signer: [Signer; 1],
}

impl Events {
    /// `checkout.session.completed` events; with `sites`, event `i` carries
    /// `data.object.metadata.site = site-(i % sites)` (for routed targets).
    pub fn new(sites: Option<usize>) -> Events {
        let catalog = Catalog::load(None).unwrap();
        let prepare = |sets: Vec<&str>| {
            catalog
                .prepare(
                    "checkout.session.completed",
                    &RenderOptions {
                        sets: sets.iter().map(|s| s.parse().unwrap()).collect(),
                        // Stripe's example session has `metadata: {}`: the site is a new key.
                        create_path: true,
                        ..Default::default()
                    },
                )
                .unwrap()
        };
        let templates = match sites {
            None => vec![prepare(vec![])],
            Some(n) => (0..n)
                .map(|i| prepare(vec![&format!("data.object.metadata.site=site-{i}")]))
                .collect(),
        };
        Events {
            templates,
            signer: [Signer::new(INCOMING.as_bytes())],
        }
    }

    pub fn wire(&self, i: u64) -> Wire {
        let prepared = &self.templates[i as usize % self.templates.len()];
        let e = stripe_ops::webhook::sign_event(prepared, &self.signer, None, None);
        Wire {
            id: e.id,
            body: e.body,
            header: e.header,
        }
    }

    pub fn body_bytes(&self) -> usize {
        self.wire(0).body.len()
    }
}

pub struct Wire {
    pub id: String,
    pub body: String,
    pub header: String,
}

/// What the sender saw.
pub struct Acks {
    /// Latency of the 2xx answers, µs.
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

impl Acks {
    pub fn p99_ms(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// When a closed loop stops starting requests.
#[derive(Clone, Copy)]
pub enum Until {
    Count(u64),
    Time(Duration),
}

/// `concurrency` senders, each on its own kept-alive connection, each sending its next event
/// as soon as the previous one was answered, until `until`.
pub async fn closed_loop(
    url: &str,
    events: &Arc<Events>,
    concurrency: usize,
    until: Until,
) -> Acks {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (url, events, next) = (url.to_owned(), events.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            let endpoint =
                stripe_ops::load::Target::new(&url, Duration::from_secs(60), Vec::new()).unwrap();
            let mut conn = None;
            let (mut latency, mut ok, mut failed) = (histogram(), 0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let more = match until {
                    Until::Count(n) => i < n,
                    Until::Time(t) => started.elapsed() < t,
                };
                if !more {
                    break;
                }
                let wire = events.wire(i);
                if conn
                    .as_ref()
                    .is_some_and(stripe_ops::load::Connection::is_stale)
                {
                    conn = None;
                }
                if conn.is_none() {
                    conn = endpoint.connect().await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    failed += 1;
                    continue;
                };
                let sent = Instant::now();
                match endpoint.post(c, wire.body.as_bytes(), &wire.header).await {
                    Ok(status) if (200..300).contains(&status) => {
                        ok += 1;
                        latency.saturating_record((sent.elapsed().as_micros() as u64).max(1));
                    }
                    Ok(_) => failed += 1,
                    Err(_) => {
                        failed += 1;
                        conn = None;
                    }
                }
            }
            (latency, ok, failed)
        }));
    }
    let mut acks = Acks {
        latency: histogram(),
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for s in senders {
        let (latency, ok, failed) = s.await.unwrap();
        acks.latency.add(&latency).unwrap();
        acks.ok += ok;
        acks.failed += failed;
    }
    acks.elapsed = started.elapsed();
    acks
}

/// Events at `rate` per second for `secs`, each request in its own task (open loop): the
/// sender does not slow down when the receiver does.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    events: &Arc<Events>,
    rate: u64,
    secs: u64,
    clock: &Arc<Clock>,
) -> Acks {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..rate * secs {
        tick.tick().await;
        let wire = events.wire(i);
        let (client, url, clock) = (client.clone(), url.to_owned(), clock.clone());
        tasks.push(tokio::spawn(async move {
            clock.sending(&wire.id);
            let sent = Instant::now();
            let resp = client
                .post(&url)
                .header("Content-Type", "application/json; charset=utf-8")
                .header("Stripe-Signature", wire.header)
                .body(wire.body)
                .send()
                .await
                .ok()?;
            let ok = resp.status().is_success();
            resp.bytes().await.ok()?;
            ok.then(|| sent.elapsed().as_micros() as u64)
        }));
    }
    let mut acks = Acks {
        latency: histogram(),
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        match t.await.ok().flatten() {
            Some(us) => {
                acks.ok += 1;
                acks.latency.saturating_record(us.max(1));
            }
            None => acks.failed += 1,
        }
    }
    acks.elapsed = started.elapsed();
    acks
}

/// `min-max` of a series, formatted by `f`.
pub fn range(values: &[f64], f: impl Fn(f64) -> String) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        "-".into()
    } else if f(min) == f(max) {
        f(min)
    } else {
        format!("{}-{}", f(min), f(max))
    }
}

/// `perf record` of a process while it lives (`FANOUT_BENCH_PERF=DIR`: `DIR/NAME.perf.data`,
/// call graphs by DWARF unwinding, as release builds keep no frame pointers); stopped when
/// dropped.
pub struct Profile(Option<Child>);

impl Profile {
    pub fn start(pid: u32, name: &str) -> Profile {
        let Some(dir) = std::env::var_os("FANOUT_BENCH_PERF") else {
            return Profile(None);
        };
        let trace = std::env::var_os("FANOUT_BENCH_PERF_TRACE").is_some();
        let out = PathBuf::from(dir).join(format!(
            "{name}.{}",
            if trace { "trace" } else { "perf.data" }
        ));
        let args: &[&str] = if trace {
            &["trace", "-p"]
        } else {
            &["record", "-F", "1999", "--call-graph", "dwarf,16384", "-p"]
        };
        let child = Command::new("perf")
            .args(args)
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        Profile(child)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = child.wait();
        }
    }
}

/// A stripe-ops relay under test: its label, its binary, and flags of its own.
pub struct Build {
    pub name: String,
    pub bin: PathBuf,
    pub flags: &'static [&'static str],
}

/// The relays under test: this build, `FANOUT_BENCH_BEFORE` (an earlier build) when set, and
/// this build with `--no-fsync` when `FANOUT_BENCH_NO_FSYNC=1`.
pub fn builds() -> Vec<Build> {
    let this = PathBuf::from(env!("CARGO_BIN_EXE_stripe-ops"));
    let mut all = vec![Build {
        name: "stripe-ops".to_owned(),
        bin: this.clone(),
        flags: &[],
    }];
    if let Some(before) = std::env::var_os("FANOUT_BENCH_BEFORE") {
        all.push(Build {
            name: "before".to_owned(),
            bin: PathBuf::from(before),
            flags: &[],
        });
    }
    if env("FANOUT_BENCH_NO_FSYNC", 0) == 1 {
        all.push(Build {
            name: "no-fsync".to_owned(),
            bin: this,
            flags: &["--no-fsync"],
        });
    }
    all
}
