//! Part `paced`: stripe-ops (and an earlier build) beside the Node relay at the pace most relays
//! see in production, a few dozen events a second (open loop), 3 targets as in `compare`: the
//! relay's CPU per event, where every event wakes it from sleep and runs with cold caches.

use std::sync::Arc;

use crate::harness::{Clock, Events, env, machine, open_loop, range, three_targets_and_relays};

pub async fn run() {
    let rounds: usize = env("FANOUT_BENCH_ROUNDS", 3);
    let rate: u64 = env("FANOUT_BENCH_PACED_RATE", 26);
    let secs: u64 = env("FANOUT_BENCH_PACED_SECS", 30);
    let clock = Arc::new(Clock::default());
    // The targets only count: kept alive for the run.
    let (_targets, relays) = three_targets_and_relays(&clock).await;
    let events = Arc::new(Events::new(None));
    let client = reqwest::Client::new();
    println!(
        "== paced: 3 targets as in compare; {rate} events/s for {secs} s, open loop | {} ==",
        machine()
    );
    // 2,000 events first: Node's JIT takes that many to settle (its CPU per event fell from
    // 1,346 to 872 µs over three rounds after a warm-up of 26).
    for relay in &relays {
        open_loop(&client, &relay.webhook, &events, 500, 4, &clock).await;
    }
    let mut cpu_us: Vec<Vec<f64>> = vec![Vec::new(); relays.len()];
    for round in 1..=rounds {
        for (r, relay) in relays.iter().enumerate() {
            let before = relay.cpu();
            let acks = open_loop(&client, &relay.webhook, &events, rate, secs, &clock).await;
            let us = (relay.cpu() - before).as_secs_f64() * 1e6 / acks.ok.max(1) as f64;
            println!(
                "round {round} {:<10} {} of {} acknowledged | ack p99 {:>6.2} ms | CPU {us:>5.0} µs/event",
                relay.name,
                acks.ok,
                rate * secs,
                acks.p99_ms()
            );
            cpu_us[r].push(us);
        }
    }
    let node = relays.len() - 1;
    println!("-- ranges over {rounds} rounds; x = this relay / node, same round --");
    for (r, relay) in relays.iter().enumerate() {
        let ratios: Vec<f64> = cpu_us[r]
            .iter()
            .zip(&cpu_us[node])
            .map(|(a, b)| a / b)
            .collect();
        println!(
            "{:<10} CPU/event {} µs (x node {})",
            relay.name,
            range(&cpu_us[r], |v| format!("{v:.0}")),
            range(&ratios, |v| format!("{v:.2}"))
        );
    }
}
