//! Relay benchmark: `stripe-ops fanout` as a process of its own, measured beside the Node relay
//! it grew from (`scripts/node-relay.js`: in memory, answers once every target answered) and,
//! with `FANOUT_BENCH_BEFORE=path/to/stripe-ops`, beside an earlier build, in one run, rounds
//! interleaved. Run: `cargo bench --bench fanout` (a release build).
//!
//! Parts (`FANOUT_BENCH_PARTS`, comma-separated; all by default):
//! - `compare`: 3 targets (one re-signed; stripe-ops verifies every incoming signature and
//!   fsyncs its spool), senders at concurrency 1 and 16: events/s until every event reached all
//!   3 targets, the sender's p99 acknowledgement, and the relay's CPU per event (user + system
//!   from `/proc/PID/stat`). `FANOUT_BENCH_ROUNDS` (3), `FANOUT_BENCH_EVENTS` (4000 per run),
//!   `FANOUT_BENCH_CONCURRENCY` (`1,16`).
//! - `paced`: the same relays at a production-like pace, `FANOUT_BENCH_PACED_RATE` (26)
//!   events/s for `FANOUT_BENCH_PACED_SECS` (30), open loop: the relay's CPU per event.
//! - `isolation`: two fast targets beside a third that answers after 2 s, or never, against
//!   three fast ones: the fast ones' delivery rate and the sender's acknowledgements over
//!   `FANOUT_BENCH_SLOW_SECS` (10) at concurrency `FANOUT_BENCH_SLOW_CONCURRENCY` (16); then in
//!   an open loop (`FANOUT_BENCH_SLOW_RATE`, 4000 events/s, for `FANOUT_BENCH_SLOW_OPEN_SECS`,
//!   5): the share the fast pair received and the latency from the sender to a fast target.
//! - `scale`: 100 targets, each routed to one site, events at `FANOUT_BENCH_RATE` (1000/s) for
//!   `FANOUT_BENCH_SECS` (60): the latency the relay adds (sender -> target through it, minus
//!   straight to a target at the same rate, per percentile) and its resident memory over time.
//!
//! `FANOUT_BENCH_NO_FSYNC=1` adds this build with `--no-fsync` (durable across a crash of the
//! relay, not of the machine) to every part.
//! `FANOUT_BENCH_LOG=DIR` keeps each relay's log there (else it goes nowhere);
//! `FANOUT_BENCH_PERF=DIR` records a `perf record` profile of each relay during its first run at
//! concurrency `FANOUT_BENCH_PERF_C` (16) (`perf report -i DIR/NAME-c16.perf.data`);
//! with `FANOUT_BENCH_PERF_TRACE=1` a `perf trace` of its system calls instead
//! (`DIR/NAME-c16.trace`: which thread waited for which, per event).

mod compare;
mod harness;
mod isolation;
mod paced;
mod scale;

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let parts: String = harness::env(
        "FANOUT_BENCH_PARTS",
        "compare,paced,isolation,scale".to_owned(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for part in parts.split(',').map(str::trim) {
        match part {
            "compare" => rt.block_on(compare::run()),
            "isolation" => rt.block_on(isolation::run()),
            "paced" => rt.block_on(paced::run()),
            "scale" => rt.block_on(scale::run()),
            other => eprintln!("unknown part {other:?} (compare, paced, isolation, scale)"),
        }
    }
}
