//! Relay benchmark: three local targets, events at a fixed rate (open loop), then as fast as
//! possible (closed loop). Reports the sender's latency through the relay and the latency the
//! relay adds: the answer's latency minus the slowest target's first attempt (which the answer
//! waits for). Run: `cargo bench --bench fanout 2>/dev/null` (stderr carries the relay's log).
//! Settings: FANOUT_BENCH_RATE (1000/s), FANOUT_BENCH_SECS (10), FANOUT_BENCH_FSYNC (both|on|off).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hdrhistogram::Histogram;
use stripe_ops::fanout::backoff::Backoff;
use stripe_ops::fanout::deliver::DeliveryOptions;
use stripe_ops::fanout::{self, RelayOptions, targets};
use stripe_ops::fixtures::{Catalog, RenderOptions};
use stripe_ops::signature::Signer;

const INCOMING: &[u8] = b"whsec_benchINCOMINGbench0123456789abcd";

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn target(received: Arc<AtomicU64>) -> String {
    let app = Router::new().route(
        "/hook",
        post(move || {
            let received = received.clone();
            async move {
                received.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Sample {
    total_us: u64,
    added_us: u64,
}

async fn send(client: &reqwest::Client, url: &str, body: String, header: String) -> Option<Sample> {
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .ok()?;
    let ok = resp.status().is_success();
    let v: serde_json::Value = resp.json().await.ok()?;
    let total_us = started.elapsed().as_micros() as u64;
    if !ok {
        return None;
    }
    let slowest_ms = v["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["ms"].as_f64())
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    Some(Sample {
        total_us,
        added_us: total_us.saturating_sub((slowest_ms * 1000.0) as u64),
    })
}

fn events(n: usize) -> Vec<(String, String)> {
    let prepared = Catalog::load(None)
        .unwrap()
        .prepare("checkout.session.completed", &RenderOptions::default())
        .unwrap();
    let signer = [Signer::new(INCOMING)];
    (0..n)
        .map(|_| {
            let e = stripe_ops::events::sign_event(&prepared, &signer, None, None);
            (e.body, e.header)
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
    let received = Arc::new(AtomicU64::new(0));
    let mut urls = Vec::new();
    for _ in 0..3 {
        urls.push(target(received.clone()).await);
    }
    let spool = tempfile::tempdir().unwrap();
    let specs = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let mut t = stripe_ops::config::FanoutTarget {
                name: format!("t{i}"),
                url: url.clone(),
                secret_file: None,
                headers: Default::default(),
            };
            if i == 2 {
                // one re-signed target, to include the signing cost
                let f = spool.path().join("t2.whsec");
                std::fs::write(&f, "whsec_benchTARGETbench0123456789abcdef").unwrap();
                t.secret_file = Some(f);
            }
            targets::resolve(&t).unwrap()
        })
        .collect();
    let relay = fanout::start(RelayOptions {
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
            },
            max_age: Duration::from_secs(3600),
            client: stripe_ops::http::client(Duration::from_secs(10)).unwrap(),
        },
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let url = relay.webhook_url.clone();

    // Direct to one target at the same rate: the baseline a sender sees without the relay.
    let direct = {
        let n = (rate * secs.min(3)) as usize;
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            tick.tick().await;
            let (c, u) = (client.clone(), urls[0].clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                c.post(&u)
                    .body("{}")
                    .send()
                    .await
                    .ok()?
                    .bytes()
                    .await
                    .ok()?;
                Some(t.elapsed().as_micros() as u64)
            }));
        }
        for t in tasks {
            if let Ok(Some(us)) = t.await {
                h.record(us).unwrap();
            }
        }
        h
    };
    received.store(0, Ordering::SeqCst);

    // Open loop at `rate`.
    let n = (rate * secs) as usize;
    let wire = events(n);
    let mut total = Histogram::<u64>::new(3).unwrap();
    let mut added = Histogram::<u64>::new(3).unwrap();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (body, header) in wire {
        tick.tick().await;
        let (c, u) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(
            async move { send(&c, &u, body, header).await },
        ));
    }
    let sent_in = started.elapsed();
    let mut failed = 0usize;
    for t in tasks {
        match t.await.ok().flatten() {
            Some(s) => {
                total.record(s.total_us).unwrap();
                added.record(s.added_us).unwrap();
            }
            None => failed += 1,
        }
    }
    // failed requests may or may not have been spooled: wait for the acknowledged ones
    let expected = 3 * (n - failed) as u64;
    while received.load(Ordering::SeqCst) < expected && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_in = started.elapsed();

    // Closed loop: 32 senders as fast as the relay answers.
    let burst = (rate * secs.min(5)) as usize;
    let wire = Arc::new(std::sync::Mutex::new(events(burst)));
    received.store(0, Ordering::SeqCst);
    let t0 = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..32 {
        let (c, u, wire) = (client.clone(), url.clone(), wire.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some((body, header)) = wire.lock().unwrap().pop() else {
                    break;
                };
                send(&c, &u, body, header).await;
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let burst_answered = t0.elapsed();
    while received.load(Ordering::SeqCst) < 3 * burst as u64
        && t0.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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
    println!("{}", line("direct to one target           ", &direct));
    println!("{}", line("through the relay (answer)     ", &total));
    println!("{}", line("added by the relay             ", &added));
    println!(
        "open loop: {n} events offered at {rate}/s in {:.2} s ({:.0}/s), {failed} failed; {} deliveries of acknowledged events done after {:.2} s",
        sent_in.as_secs_f64(),
        n as f64 / sent_in.as_secs_f64(),
        expected,
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
