//! Relay benchmark: three local targets, events at a fixed rate (open loop), then as fast as
//! possible (closed loop). The sender notes when it starts each request and every target notes
//! when the event reaches it, so the bench measures sender-to-target latency through the relay
//! and, at the same rate, straight to a target; the relay's added latency is the difference at
//! each percentile. It also reports the latency of the relay's answer (which waits for the
//! spool, fsync'd, and for the targets' first attempts). Run:
//! `cargo bench --bench fanout 2>/dev/null` (stderr carries the relay's log).
//! Settings: FANOUT_BENCH_RATE (1000/s), FANOUT_BENCH_SECS (10), FANOUT_BENCH_FSYNC (both|on|off).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hdrhistogram::Histogram;
use stripe_ops::fanout::deliver::DeliveryOptions;
use stripe_ops::fanout::{self, RelayOptions, targets};
use stripe_ops::printer::Printer;
use stripe_ops::retry::Backoff;
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions};
use stripe_ops::webhook::signature::Signer;

const INCOMING: &[u8] = b"whsec_benchINCOMINGbench0123456789abcd";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// When each event id left the sender, and the sender-to-target latencies seen so far.
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    arrivals: Mutex<Option<Histogram<u64>>>,
    received: AtomicU64,
}

impl Clock {
    fn sending(&self, id: &str) {
        self.sent
            .lock()
            .unwrap()
            .insert(id.to_owned(), Instant::now());
    }

    fn arrived(&self, body: &[u8]) {
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
        self.received.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts a new measurement: returns the arrivals recorded since the last one.
    fn reset(&self) -> Histogram<u64> {
        self.received.store(0, Ordering::SeqCst);
        self.sent.lock().unwrap().clear();
        self.arrivals
            .lock()
            .unwrap()
            .replace(histogram())
            .unwrap_or_else(histogram)
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

async fn target(clock: Arc<Clock>) -> String {
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let clock = clock.clone();
            async move {
                clock.arrived(&body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// POSTs one event; returns the answer's latency when it was a 2xx.
async fn send(client: &reqwest::Client, url: &str, event: Wire, clock: &Clock) -> Option<u64> {
    clock.sending(&event.id);
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", event.header)
        .body(event.body)
        .send()
        .await
        .ok()?;
    let ok = resp.status().is_success();
    resp.bytes().await.ok()?;
    ok.then(|| started.elapsed().as_micros() as u64)
}

struct Wire {
    id: String,
    body: String,
    header: String,
}

/// Sends `events` at `rate` per second, each in its own task; returns the answers' latencies
/// and how many requests failed.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    events: Vec<Wire>,
    rate: u64,
    clock: &Arc<Clock>,
) -> (Histogram<u64>, usize) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(events.len());
    for event in events {
        tick.tick().await;
        let (c, u, clock) = (client.clone(), url.to_owned(), clock.clone());
        tasks.push(tokio::spawn(
            async move { send(&c, &u, event, &clock).await },
        ));
    }
    let mut answers = histogram();
    let mut failed = 0;
    for t in tasks {
        match t.await.ok().flatten() {
            Some(us) => answers.saturating_record(us.max(1)),
            None => failed += 1,
        }
    }
    (answers, failed)
}

async fn wait_received(clock: &Clock, expected: u64, since: Instant) {
    while clock.received() < expected && since.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn events(n: usize) -> Vec<Wire> {
    let prepared = Catalog::load(None)
        .unwrap()
        .prepare("checkout.session.completed", &RenderOptions::default())
        .unwrap();
    let signer = [Signer::new(INCOMING)];
    (0..n)
        .map(|_| {
            let e = stripe_ops::webhook::sign_event(&prepared, &signer, None, None);
            Wire {
                id: e.id,
                body: e.body,
                header: e.header,
            }
        })
        .collect()
}

fn line(name: &str, h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0
    )
}

async fn run(fsync: bool, rate: u64, secs: u64) {
    let clock = Arc::new(Clock::default());
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(target(clock.clone()).await);
    }
    let spool = tempfile::tempdir().unwrap();
    let specs = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let mut t = stripe_ops::config::FanoutTarget {
                name: format!("t{i}"),
                url: url.clone(),
                ..Default::default()
            };
            if i == 2 {
                // one re-signed target, to include the signing cost
                let f = spool.path().join("t2.whsec");
                std::fs::write(&f, "whsec_benchTARGETbench0123456789abcdef").unwrap();
                t.secret_file = Some(f);
            }
            targets::resolve(&t, &Printer::silent()).unwrap()
        })
        .collect();
    let relay = fanout::start(RelayOptions {
        api_version: None,
        listen: "127.0.0.1:0".into(),
        path: "/webhook".into(),
        spool: spool.path().join("spool"),
        fsync,
        targets: specs,
        verify: vec![Signer::new(INCOMING)],
        tolerance: 300,
        summary_wait: Duration::from_secs(5),
        delivery: DeliveryOptions {
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(5),
                jitter: true,
            },
            max_age: Duration::from_secs(3600),
            in_flight: 16,
            client: stripe_ops::http::client(Duration::from_secs(10)).unwrap(),
        },
        out: Printer::silent(),
        idle_timeout: stripe_ops::server::IDLE_TIMEOUT,
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let n = (rate * secs) as usize;

    // Warm-up (connections, allocator), then straight to one target at the same rate: the
    // latency a target sees without the relay.
    clock.reset();
    open_loop(&client, &urls[0], events(rate as usize), rate, &clock).await;
    clock.reset();
    open_loop(&client, &urls[0], events(n), rate, &clock).await;
    wait_received(&clock, n as u64, Instant::now()).await;
    let direct = clock.reset();

    // Through the relay, open loop at `rate`.
    let started = Instant::now();
    let (answers, failed) = open_loop(&client, &relay.webhook_url, events(n), rate, &clock).await;
    let expected = 3 * (n - failed) as u64;
    wait_received(&clock, expected, started).await;
    let delivered_in = started.elapsed();
    let through = clock.reset();

    // Closed loop: 32 senders as fast as the relay answers.
    let burst = (rate * secs.min(5)) as usize;
    let wire = Arc::new(Mutex::new(events(burst)));
    let t0 = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (c, u, wire, clock) = (
            client.clone(),
            relay.webhook_url.clone(),
            wire.clone(),
            clock.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let Some(event) = wire.lock().unwrap().pop() else {
                    break;
                };
                send(&c, &u, event, &clock).await;
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let burst_answered = t0.elapsed();
    wait_received(&clock, 3 * burst as u64, t0).await;
    let burst_delivered = t0.elapsed();
    relay.shutdown().await;

    println!(
        "== fsync {} | 3 targets (one re-signed), incoming signature verified | {} cores, load average {} ==",
        if fsync {
            "ON (durable against machine crash)"
        } else {
            "OFF (--no-fsync: durable against relay crash)"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{}", line("sender -> target, direct        ", &direct));
    println!("{}", line("sender -> target, through relay ", &through));
    let added = |q: f64| {
        (through.value_at_quantile(q) as f64 - direct.value_at_quantile(q) as f64) / 1000.0
    };
    println!(
        "added by the relay               : p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        added(0.5),
        added(0.9),
        added(0.99)
    );
    println!("{}", line("relay's answer to the sender    ", &answers));
    println!(
        "open loop: {n} events at {rate}/s, {failed} failed; all {expected} deliveries done after {:.2} s",
        delivered_in.as_secs_f64()
    );
    println!(
        "closed loop (32 senders): {burst} events answered in {:.2} s = {:.0} events/s ({:.0} deliveries/s); all delivered after {:.2} s",
        burst_answered.as_secs_f64(),
        burst as f64 / burst_answered.as_secs_f64(),
        3.0 * burst as f64 / burst_delivered.as_secs_f64(),
        burst_delivered.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let rate = env("FANOUT_BENCH_RATE", 1000u64);
    let secs = env("FANOUT_BENCH_SECS", 10u64);
    let mode: String = env("FANOUT_BENCH_FSYNC", "both".to_owned());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for fsync in [true, false] {
        if mode == "both" || (mode == "on") == fsync {
            rt.block_on(run(fsync, rate, secs));
        }
    }
}
