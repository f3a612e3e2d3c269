//! The deterministic smoke against an in-process sandbox on loopback: the whole run (11 steps,
//! and the 6-step happy path), and the mean latency of each step over 30 runs (printed). The
//! sandbox's handlers are trivial, so these are close to the tool's own overhead plus loopback.
//! Run: `cargo bench --bench smoke`.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stripe_ops::printer::Printer;
use stripe_ops::sandbox::{self, SandboxOptions};
use stripe_ops::secret::SecretString;
use stripe_ops::smoke::deterministic::{self, DeterministicOptions};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secret = SecretString::from("whsec_benchbenchbenchbenchbenchbench".to_owned());
    let sb = rt
        .block_on(sandbox::start(SandboxOptions {
            webhook_secrets: vec![secret.clone()],
            ..SandboxOptions::default()
        }))
        .unwrap();
    let full = DeterministicOptions::new(sb.app_url(), secret.clone());
    let mut happy = DeterministicOptions::new(sb.app_url(), secret);
    happy.only_happy_path = true;

    print_step_means(&rt, &full, 30);

    let mut g = c.benchmark_group("deterministic smoke");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("full (11 steps)", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(deterministic::run(&full, &Printer::silent()))
                    .unwrap()
                    .ok
            )
        })
    });
    g.bench_function("happy path (6 steps)", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(deterministic::run(&happy, &Printer::silent()))
                    .unwrap()
                    .ok
            )
        })
    });
    g.finish();
    rt.block_on(sb.shutdown());
}

fn print_step_means(rt: &tokio::runtime::Runtime, opts: &DeterministicOptions, runs: usize) {
    let mut sums: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut total = 0.0;
    for _ in 0..runs {
        let report = rt
            .block_on(deterministic::run(opts, &Printer::silent()))
            .unwrap();
        assert!(report.ok, "{:?}", report.error);
        for (i, step) in report.steps.iter().enumerate() {
            *sums.entry((i, step.name.clone())).or_default() += step.ms;
            total += step.ms;
        }
    }
    eprintln!("mean step latency over {runs} runs:");
    for ((_, name), sum) in &sums {
        eprintln!("  {name:<14} {:>8.3} ms", sum / runs as f64);
    }
    eprintln!("  {:<14} {:>8.3} ms", "sum", total / runs as f64);
}

criterion_group!(benches, bench);
criterion_main!(benches);
