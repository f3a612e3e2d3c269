//! Signing speed: HMAC-SHA256 over a 1 KiB body, and the whole render + sign of one event.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions, new_event_id};
use stripe_ops::webhook::signature::{self, Signer};

fn bench(c: &mut Criterion) {
    let signer = Signer::new(b"whsec_benchbenchbenchbenchbenchbench");
    let body = vec![b'x'; 1024];
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v1 hex, 1 KiB body", |b| {
        b.iter(|| signer.sign_hex(black_box(1_700_000_000), black_box(&body)))
    });
    g.bench_function("header, 1 KiB body", |b| {
        b.iter(|| {
            signature::header(
                black_box(1_700_000_000),
                black_box(&body),
                std::slice::from_ref(&signer),
            )
        })
    });
    let prepared = Catalog::load(None)
        .unwrap()
        .prepare("checkout.session.completed", &RenderOptions::default())
        .unwrap();
    g.bench_function("render + sign checkout.session.completed", |b| {
        b.iter(|| {
            let id = new_event_id();
            let body = prepared.body(&id, 1_700_000_000);
            signature::header(
                1_700_000_000,
                body.as_bytes(),
                std::slice::from_ref(&signer),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
