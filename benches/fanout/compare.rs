//! Part `compare`: stripe-ops (and an earlier build) beside the Node relay, 3 targets, senders
//! at concurrency 1 and 16, rounds interleaved.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{
    Clock, Events, Profile, Relay, Targets, Until, closed_loop, env, machine, range,
    three_targets_and_relays,
};

struct Run {
    events_per_s: f64,
    p99_ms: f64,
    cpu_us: f64,
    /// The kernel's part of `cpu_us`.
    system_us: f64,
}

pub async fn run() {
    let rounds: usize = env("FANOUT_BENCH_ROUNDS", 3);
    let n: u64 = env("FANOUT_BENCH_EVENTS", 4000);
    let (targets, relays) = three_targets_and_relays(&Arc::new(Clock::default())).await;
    let events = Arc::new(Events::new(None));
    println!(
        "== compare: 3 targets (stripe-ops: t2 re-signed, incoming signatures verified, spool fsync'd; \
         node: in memory, answers after all 3), checkout.session.completed of {} bytes, {n} events per run | {} ==",
        events.body_bytes(),
        machine()
    );
    for relay in &relays {
        one(relay, &targets, &events, 16, 500).await;
    }
    let concurrencies: Vec<usize> = env("FANOUT_BENCH_CONCURRENCY", "1,16".to_owned())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let mut runs: BTreeMap<(usize, usize), Vec<Run>> = BTreeMap::new();
    for round in 1..=rounds {
        for &c in &concurrencies {
            for (r, relay) in relays.iter().enumerate() {
                let profile = (round == 1 && c == env("FANOUT_BENCH_PERF_C", 16))
                    .then(|| Profile::start(relay.pid(), &format!("{}-c{c}", relay.name)));
                let run = one(relay, &targets, &events, c, n).await;
                drop(profile);
                println!(
                    "round {round} c={c:<2} {:<10} {:>6.0} events/s to all 3 | ack p99 {:>6.2} ms | CPU {:>4.0} µs/event",
                    relay.name, run.events_per_s, run.p99_ms, run.cpu_us
                );
                runs.entry((c, r)).or_default().push(run);
            }
        }
    }
    let node = relays.len() - 1;
    println!("-- ranges over {rounds} rounds; x = this relay / node, same round --");
    for &c in &concurrencies {
        for (r, relay) in relays.iter().enumerate() {
            let mine = &runs[&(c, r)];
            let theirs = &runs[&(c, node)];
            let ratio = |f: fn(&Run) -> f64| -> Vec<f64> {
                mine.iter().zip(theirs).map(|(a, b)| f(a) / f(b)).collect()
            };
            let series = |f: fn(&Run) -> f64| -> Vec<f64> { mine.iter().map(f).collect() };
            let x = |v: f64| format!("{v:.2}");
            let mut line = format!(
                "c={c:<2} {:<10} events/s {} | ack p99 {} ms | CPU/event {} µs (system {})",
                relay.name,
                range(&series(|r| r.events_per_s), |v| format!("{v:.0}")),
                range(&series(|r| r.p99_ms), |v| format!("{v:.2}")),
                range(&series(|r| r.cpu_us), |v| format!("{v:.0}")),
                range(&series(|r| r.system_us), |v| format!("{v:.0}")),
            );
            if r != node {
                // The system part alone against node's whole CPU: how low the ratio could go if
                // this relay's own code cost nothing (the same sockets, the disk).
                let floor: Vec<f64> = mine
                    .iter()
                    .zip(theirs)
                    .map(|(a, b)| a.system_us / b.cpu_us)
                    .collect();
                line.push_str(&format!(
                    "  (x node: events/s {}, p99 {}, CPU {}, system alone {})",
                    range(&ratio(|r| r.events_per_s), x),
                    range(&ratio(|r| r.p99_ms), x),
                    range(&ratio(|r| r.cpu_us), x),
                    range(&floor, x),
                ));
            }
            println!("{line}");
        }
    }
}

/// `n` events at concurrency `c` through `relay`, timed until all 3 targets had every one.
async fn one(relay: &Relay, targets: &Targets, events: &Arc<Events>, c: usize, n: u64) -> Run {
    targets.reset();
    let (cpu, system) = (relay.cpu(), relay.system_cpu());
    let started = Instant::now();
    let acks = closed_loop(&relay.webhook, events, c, Until::Count(n)).await;
    let all = targets
        .wait(&[0, 1, 2], acks.ok, Duration::from_secs(120))
        .await;
    let elapsed = started.elapsed();
    let (cpu, system) = (relay.cpu() - cpu, relay.system_cpu() - system);
    if acks.failed > 0 || !all {
        println!(
            "   {}: {} of {n} not acknowledged; all delivered: {all}",
            relay.name, acks.failed
        );
    }
    Run {
        events_per_s: acks.ok as f64 / elapsed.as_secs_f64(),
        p99_ms: acks.p99_ms(),
        cpu_us: cpu.as_secs_f64() * 1e6 / n as f64,
        system_us: system.as_secs_f64() * 1e6 / n as f64,
    }
}
