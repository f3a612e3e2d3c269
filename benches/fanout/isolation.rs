//! Part `isolation`: two fast targets beside a third that answers after 2 s, or never, against
//! three fast ones, senders at concurrency 16 (`FANOUT_BENCH_SLOW_CONCURRENCY`) for a fixed
//! time: what the fast ones received per second, and how the relay answered its sender. Then
//! the same three settings in an open loop, as Stripe sends (events as they happen, whatever
//! the answers), at `FANOUT_BENCH_SLOW_RATE` (4000) events/s for `FANOUT_BENCH_SLOW_OPEN_SECS`
//! (5): what share of the events the fast pair received, and how long each took from the
//! sender to a fast target.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{
    Answer, Clock, Events, Relay, TargetConfig, Targets, Until, builds, closed_loop, env, machine,
    open_loop, range,
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
    let clock = Arc::new(Clock::default());
    // Targets 0 and 1 are the fast pair; 2 fast, 3 slow, 4 never answers.
    let targets = Targets::start(
        &[
            Answer::Fast,
            Answer::Fast,
            Answer::Fast,
            Answer::After(slow),
            Answer::Never,
        ],
        &clock,
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
    let setting = |third: usize| -> Vec<TargetConfig> {
        [0, 1, third]
            .iter()
            .map(|&i| TargetConfig {
                url: targets.urls[i].clone(),
                resigned: false,
                site: None,
            })
            .collect()
    };
    for build in builds() {
        let name = &build.name;
        let flags = [&["--timeout", "5s"], build.flags].concat();
        let mut all: Vec<Vec<Run>> = thirds.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (k, (label, third)) in thirds.iter().enumerate() {
                let relay = Relay::stripe_ops(name, &build.bin, &setting(*third), &flags);
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
                "{name:<10} {label:<9}: fast pair {} events/s vs {} with 3 fast: {} | acks {} events/s, p99 {} ms | CPU {} µs/event vs {}",
                column(&all[k], |r| r.fast_per_s, 0),
                column(&all[0], |r| r.fast_per_s, 0),
                share_lost(&lost),
                column(&all[k], |r| r.acks_per_s, 0),
                column(&all[k], |r| r.p99_ms, 2),
                column(&all[k], |r| r.cpu_us, 0),
                column(&all[0], |r| r.cpu_us, 0),
            );
        }
    }
    open(&targets, &clock, &events, &thirds, setting).await;
}

/// The open loop of the module comment, for each build and setting.
async fn open(
    targets: &Targets,
    clock: &Arc<Clock>,
    events: &Arc<Events>,
    thirds: &[(&str, usize)],
    setting: impl Fn(usize) -> Vec<TargetConfig>,
) {
    let rate: u64 = env("FANOUT_BENCH_SLOW_RATE", 4000);
    let secs: u64 = env("FANOUT_BENCH_SLOW_OPEN_SECS", 5);
    let rounds: usize = env("FANOUT_BENCH_ROUNDS", 3);
    let client = reqwest::Client::new();
    let sent = rate * secs;
    println!("-- open loop: {rate} events/s for {secs} s --");
    for build in builds() {
        let name = &build.name;
        let flags = [&["--timeout", "5s"], build.flags].concat();
        // Per setting: the fast pair's share (%), its p99 from the sender (ms), the ack p99.
        let mut all: Vec<Vec<[f64; 3]>> = thirds.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (k, (label, third)) in thirds.iter().enumerate() {
                let relay = Relay::stripe_ops(name, &build.bin, &setting(*third), &flags);
                targets.reset();
                clock.reset();
                clock.set_timing(true);
                let acks = open_loop(&client, &relay.webhook, events, rate, secs, clock).await;
                // The last deliveries may come a little after the last answer.
                targets.wait(&[0, 1], sent, Duration::from_secs(5)).await;
                clock.set_timing(false);
                let arrivals = clock.reset();
                let fast = targets.count(0).min(targets.count(1));
                let run = [
                    100.0 * fast as f64 / sent as f64,
                    arrivals.value_at_quantile(0.99) as f64 / 1000.0,
                    acks.p99_ms(),
                ];
                println!(
                    "round {round} {name:<10} {label:<9}: fast pair got {:>5.1} % of {sent} | sender to fast target p50 {:>5.2} p99 {:>6.2} ms | acknowledged {}, p99 {:>6.2} ms",
                    run[0],
                    arrivals.value_at_quantile(0.5) as f64 / 1000.0,
                    run[1],
                    acks.ok,
                    run[2]
                );
                all[k].push(run);
                drop(relay);
            }
        }
        let figure = |k: usize, i: usize| {
            let values: Vec<f64> = all[k].iter().map(|run| run[i]).collect();
            range(&values, |v| format!("{v:.2}"))
        };
        for (k, (label, _)) in thirds.iter().enumerate().skip(1) {
            println!(
                "{name:<10} {label:<9} open loop: fast pair got {} % | sender to fast target p99 {} ms vs {} with 3 fast | ack p99 {} ms vs {}",
                figure(k, 0),
                figure(k, 1),
                figure(0, 1),
                figure(k, 2),
                figure(0, 2),
            );
        }
    }
}

/// "9.1-17.7 % lost", or "none: 12.2-13.9 % more" when the fast pair gained in every round.
fn share_lost(lost: &[f64]) -> String {
    if lost.iter().all(|&v| v < 0.0) {
        let more: Vec<f64> = lost.iter().map(|v| -v).collect();
        return format!("none: {} % more", range(&more, |v| format!("{v:.1}")));
    }
    format!("{} % lost", range(lost, |v| format!("{v:.1}")))
}

/// The range of one figure over the rounds' runs, with `decimals` digits after the point.
fn column(runs: &[Run], figure: impl Fn(&Run) -> f64, decimals: usize) -> String {
    let values: Vec<f64> = runs.iter().map(figure).collect();
    range(&values, |v| format!("{v:.decimals$}"))
}
