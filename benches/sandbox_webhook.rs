//! The sandbox app's webhook: the work of one delivery in-process (verify + parse + credit
//! decision), and signed POSTs over loopback HTTP with 64 in flight (client and server share the
//! machine, as in `check`'s load mode). Run: `cargo bench --bench sandbox_webhook`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use stripe_ops::sandbox::state::{Idempotency, Store, WebhookEvent};
use stripe_ops::sandbox::{SandboxOptions, start};
use stripe_ops::secret::ExposeSecret;
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions, new_event_id};
use stripe_ops::webhook::signature::{self, Signer};

fn bench(c: &mut Criterion) {
    let prepared = Catalog::load(None)
        .unwrap()
        .prepare("checkout.session.completed", &RenderOptions::default())
        .unwrap();
    let signer = Signer::new(b"whsec_benchbenchbenchbenchbenchbench");
    let mut g = c.benchmark_group("sandbox webhook");
    g.throughput(Throughput::Elements(1));

    let body = prepared.body(&new_event_id(), 1_700_000_000);
    let header = signature::header(
        1_700_000_000,
        body.as_bytes(),
        std::slice::from_ref(&signer),
    );
    let mut store = Store::default();
    g.bench_function("verify + parse + apply (in-process)", |b| {
        b.iter(|| {
            signature::verify(
                black_box(&header),
                black_box(body.as_bytes()),
                std::slice::from_ref(&signer),
                300,
                1_700_000_000,
                signature::Window::BothWays,
            )
            .unwrap();
            let event: WebhookEvent = serde_json::from_slice(body.as_bytes()).unwrap();
            store.apply(&event, Idempotency::Enforced, true)
        })
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = rt.block_on(start(SandboxOptions::default())).unwrap();
    let app_signer = Signer::new(sandbox.webhook_secret().unwrap().expose_secret().as_bytes());
    let url = sandbox.webhook_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("signed POST over loopback, 64 in flight", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                futures_util::stream::iter(0..iters)
                    .for_each_concurrent(64, |_| {
                        let now = stripe_ops::timestamp::unix_now();
                        let body = prepared.body(&new_event_id(), now);
                        let header = signature::header(
                            now,
                            body.as_bytes(),
                            std::slice::from_ref(&app_signer),
                        );
                        let req = client
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .header("Stripe-Signature", header)
                            .body(body);
                        async move {
                            let resp = req.send().await.unwrap();
                            assert!(resp.status().is_success());
                        }
                    })
                    .await;
                started.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(sandbox.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
