//! Part `isolation`: two fast targets beside a third that answers after 2 s, or never, against
//! three fast ones, senders at concurrency 16 (`FANOUT_BENCH_SLOW_CONCURRENCY`) for a fixed
//! time: what the fast ones received per second, and how the relay answered its sender.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{
    Answer, Clock, Events, Relay, TargetConfig, Targets, Until, builds, closed_loop, env, machine,
    range,
};

struct Run {
    fast_per_s: f64,
    acks_per_s: f64,
    p99_ms: f64,
    /// The relay's CPU (user + system) per acknowledged event.
    cpu_us: f64,
}

pub async fn run() {
    let secs: u64 = env("FANOUT_BENCH_SLOW_SECS", 10);
    let concurrency: usize = env("FANOUT_BENCH_SLOW_CONCURRENCY", 16);
    let rounds: usize = env("FANOUT_BENCH_ROUNDS", 3);
    let slow = Duration::from_secs(2);
    // Targets 0 and 1 are the fast pair; 2 fast, 3 slow, 4 never answers.
    let targets = Targets::start(
        &[
            Answer::Fast,
            Answer::Fast,
            Answer::Fast,
            Answer::After(slow),
            Answer::Never,
        ],
        &Arc::new(Clock::default()),
    )
    .await;
    let events = Arc::new(Events::new(None));
    println!(
        "== isolation: targets t0 t1 fast, t2 fast | answering after {} s | never answering (--timeout 5s); \
         sender at concurrency {concurrency} for {secs} s | {} ==",
        slow.as_secs(),
        machine()
    );
    let thirds = [("3 fast", 2), ("slow t2", 3), ("silent t2", 4)];
    for build in builds() {
        let name = &build.name;
        let flags = [&["--timeout", "5s"], build.flags].concat();
        let mut all: Vec<Vec<Run>> = thirds.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (k, (label, third)) in thirds.iter().enumerate() {
                let configs: Vec<TargetConfig> = [0, 1, *third]
                    .iter()
                    .map(|&i| TargetConfig {
                        url: targets.urls[i].clone(),
                        resigned: false,
                        site: None,
                    })
                    .collect();
                let relay = Relay::stripe_ops(name, &build.bin, &configs, &flags);
                targets.reset();
                let window = Duration::from_secs(secs);
                let cpu = relay.cpu();
                let acks =
                    closed_loop(&relay.webhook, &events, concurrency, Until::Time(window)).await;
                let cpu = relay.cpu() - cpu;
                // What the fast pair had by the end of the window (the last answers may come a
                // little after it).
                let fast = targets.count(0).min(targets.count(1));
                let run = Run {
                    fast_per_s: fast as f64 / acks.elapsed.as_secs_f64(),
                    acks_per_s: acks.ok as f64 / acks.elapsed.as_secs_f64(),
                    p99_ms: acks.p99_ms(),
                    cpu_us: cpu.as_secs_f64() * 1e6 / acks.ok.max(1) as f64,
                };
                println!(
                    "round {round} {name:<10} {label:<9}: fast pair {:>6.0} events/s | relay acknowledged {:>6.0} events/s, p99 {:>8.2} ms | CPU {:>4.0} µs/event",
                    run.fast_per_s, run.acks_per_s, run.p99_ms, run.cpu_us
                );
                all[k].push(run);
                drop(relay);
            }
        }
        for (k, (label, _)) in thirds.iter().enumerate().skip(1) {
            let lost: Vec<f64> = all[k]
                .iter()
                .zip(&all[0])
                .map(|(slow, fast)| 100.0 * (1.0 - slow.fast_per_s / fast.fast_per_s))
                .collect();
            println!(
                "{name:<10} {label:<9}: fast pair {} events/s vs {} with 3 fast: {} % lost | acks {} events/s, p99 {} ms | CPU {} µs/event vs {}",
                column(&all[k], |r| r.fast_per_s, 0),
                column(&all[0], |r| r.fast_per_s, 0),
                range(&lost, |v| format!("{v:.1}")),
                column(&all[k], |r| r.acks_per_s, 0),
                column(&all[k], |r| r.p99_ms, 2),
                column(&all[k], |r| r.cpu_us, 0),
                column(&all[0], |r| r.cpu_us, 0),
            );
        }
    }
}

/// The range of one figure over the rounds' runs, with `decimals` digits after the point.
fn column(runs: &[Run], figure: impl Fn(&Run) -> f64, decimals: usize) -> String {
    let values: Vec<f64> = runs.iter().map(figure).collect();
    range(&values, |v| format!("{v:.decimals$}"))
}
