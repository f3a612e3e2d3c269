//! Part `scale`: 100 targets, each routed to one site (`data.object.metadata.site`), events
//! spread over the sites at a fixed rate (open loop): the latency the relay adds between its
//! sender and the target (through it, minus straight to a target at the same rate, per
//! percentile), and its resident memory over the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::harness::{
    Answer, Clock, Events, Relay, TargetConfig, Targets, builds, env, machine, open_loop,
};

pub async fn run() {
    let rate: u64 = env("FANOUT_BENCH_RATE", 1000);
    let secs: u64 = env("FANOUT_BENCH_SECS", 60);
    let count: usize = env("FANOUT_BENCH_TARGETS", 100);
    let clock = Clock::timing();
    let targets = Targets::start(&vec![Answer::Fast; count], &clock).await;
    let events = Arc::new(Events::new(Some(count)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    println!(
        "== scale: {count} targets, each routed to one site; {rate} events/s for {secs} s, open loop | {} ==",
        machine()
    );
    // Straight to one target at the same rate: the latency without a relay.
    let warm = open_loop(&client, &targets.urls[0], &events, rate, 2, &clock).await;
    clock.reset();
    let direct_secs = secs.min(10);
    let direct = open_loop(
        &client,
        &targets.urls[0],
        &events,
        rate,
        direct_secs,
        &clock,
    )
    .await;
    wait_total(&targets, count, warm.ok + direct.ok).await;
    let direct = clock.reset();
    println!("{}", line("sender -> target, direct", &direct));
    let configs: Vec<TargetConfig> = targets
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| TargetConfig {
            url: url.clone(),
            resigned: false,
            site: Some(format!("site-{i}")),
        })
        .collect();
    for build in builds() {
        let name = &build.name;
        let relay = Arc::new(Relay::stripe_ops(name, &build.bin, &configs, build.flags));
        targets.reset();
        let warm = open_loop(&client, &relay.webhook, &events, rate, 2, &clock).await;
        wait_total(&targets, count, warm.ok).await;
        targets.reset();
        clock.reset();
        let sampler = {
            let relay = relay.clone();
            tokio::spawn(async move {
                let mut rss = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    rss.push(relay.rss_kib());
                    if rss.len() as u64 > secs {
                        return rss;
                    }
                }
            })
        };
        let cpu = relay.cpu();
        let started = Instant::now();
        let acks = open_loop(&client, &relay.webhook, &events, rate, secs, &clock).await;
        let all = wait_total(&targets, count, acks.ok).await;
        let delivered_after = started.elapsed();
        let cpu = relay.cpu() - cpu;
        let through = clock.reset();
        let rss = sampler.await.unwrap();
        println!("{}", line(&format!("sender -> target, {name}"), &through));
        let added = |q: f64| {
            (through.value_at_quantile(q) as f64 - direct.value_at_quantile(q) as f64) / 1000.0
        };
        println!(
            "{name}: added by the relay p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms | ack p99 {:.2} ms | {} of {} acknowledged, all delivered {all} after {:.1} s | CPU {:.0} µs/event",
            added(0.5),
            added(0.9),
            added(0.99),
            acks.p99_ms(),
            acks.ok,
            rate * secs,
            delivered_after.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / acks.ok.max(1) as f64
        );
        let at = |s: usize| rss.get(s.min(rss.len() - 1)).copied().unwrap_or(0) / 1024;
        println!(
            "{name}: resident memory at 5 s {} MiB, {} s {} MiB, {} s {} MiB, largest {} MiB",
            at(5),
            secs / 2,
            at(secs as usize / 2),
            secs,
            at(secs as usize),
            rss.iter().max().copied().unwrap_or(0) / 1024
        );
    }
}

async fn wait_total(targets: &Targets, count: usize, n: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while (0..count).map(|i| targets.count(i)).sum::<u64>() < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
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
