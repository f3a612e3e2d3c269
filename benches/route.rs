//! Fanout routing: what deciding whether one event goes to a target costs, for an open route
//! and for a route with a type glob and a path match (parsing the body, or reusing
//! the parse another route made), on a pretty-printed
//! `checkout.session.completed` (the body Stripe sends). Run: `cargo bench --bench route`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stripe_ops::fanout::route::{Parsed, Route};
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions};

fn bench(c: &mut Criterion) {
    let body = Catalog::load(None)
        .unwrap()
        .prepare("checkout.session.completed", &RenderOptions::default())
        .unwrap()
        .body("evt_bench", 1_700_000_000);
    let body = body.as_bytes();
    let open = Route::default();
    let routed = Route::new(
        &["checkout.session.*".into()],
        &BTreeMap::from([(
            "data.object.metadata.siteOrigin".into(),
            vec!["https://james.example".into()],
        )]),
    )
    .unwrap();
    let mut g = c.benchmark_group("route");
    g.throughput(Throughput::Elements(1));
    g.bench_function("open route", |b| {
        b.iter(|| open.lets_through(black_box(body), &Parsed::default()))
    });
    g.bench_function(
        format!("glob + match, {} B event, parsed here", body.len()),
        |b| b.iter(|| routed.lets_through(black_box(body), &Parsed::default())),
    );
    let parsed = Parsed::default();
    g.bench_function("glob + match, parse shared with an earlier route", |b| {
        b.iter(|| routed.lets_through(black_box(body), &parsed))
    });
    g.bench_function("eight routed targets, one parse", |b| {
        b.iter(|| {
            let parsed = Parsed::default();
            (0..8).all(|_| routed.lets_through(black_box(body), &parsed))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
