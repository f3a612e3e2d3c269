//! The hub's unit tests: when the sender is answered (before the fsync or after it), and a
//! target behind the feed's memory reading the spool back in order.

use super::*;
use crate::config::FanoutTarget;
use crate::printer::Printer;
use axum::body::Bytes;

/// A target on loopback that records each delivery's id as it arrives and answers only once
/// `open` turns true.
async fn holding_target(seen: Arc<Mutex<Vec<String>>>, open: watch::Receiver<bool>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let (seen, mut open) = (seen.clone(), open.clone());
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap();
                seen.lock()
                    .unwrap()
                    .push(event["id"].as_str().unwrap().to_owned());
                let _ = open.wait_for(|o| *o).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn event(i: usize) -> Event {
    let body = format!("{{\"id\":\"evt_{i}\",\"pad\":\"{}\"}}", "x".repeat(1000));
    Event {
        seq: 0,
        id: Some(format!("evt_{i}")),
        received_ms: crate::timestamp::unix_ms(),
        content_type: None,
        signature: None,
        body: body.into(),
        parsed: Parsed::default(),
    }
}

/// A target on loopback that answers every delivery with `status`.
async fn answering_target(status: u16) -> String {
    let status = axum::http::StatusCode::from_u16(status).unwrap();
    let app =
        axum::Router::new().route("/hook", axum::routing::post(move || async move { status }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A hub delivering to `targets` (name, URL), one attempt at a time each, with `budget`
/// (bytes, events) of events in memory.
fn hub(
    spool: Spool,
    recovered: Recovered,
    targets: &[(&str, &str)],
    budget: (usize, usize),
) -> Hub {
    let specs = targets
        .iter()
        .map(|(name, url)| {
            let target = FanoutTarget {
                name: (*name).into(),
                url: (*url).into(),
                ..Default::default()
            };
            super::super::targets::resolve(&target, &Printer::silent()).unwrap()
        })
        .collect();
    let opts = DeliveryOptions {
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            jitter: false,
        },
        max_age: Duration::from_secs(3600),
        in_flight: 1,
        client: super::super::attempt::Client::new(Duration::from_secs(30), false).unwrap(),
        max_spool: None,
    };
    Hub::start_with(
        Arc::new(spool),
        recovered,
        specs,
        opts,
        Log::silent(),
        budget,
    )
    .unwrap()
}

/// Submits `e` as the relay does; returns what its sender waits for.
fn submit(hub: &Hub, e: Event) -> (Spooled, Judged, Arc<Answer>) {
    let judged = hub.judge(&e.body, &e.parsed);
    let answer = Arc::new(Answer::expecting(judged.roster.len()));
    let spooled = hub.submit(e, judged.verdicts.clone(), answer.clone());
    (spooled, judged, answer)
}

/// A hub on an fsync'd spool delivering to two targets, `a` and `b`, answering `statuses`.
async fn fsyncing_hub(statuses: [u16; 2]) -> (tempfile::TempDir, Hub) {
    let dir = tempfile::tempdir().unwrap();
    let (spool, recovered) = Spool::open(dir.path(), true).unwrap();
    let (a, b) = (
        answering_target(statuses[0]).await,
        answering_target(statuses[1]).await,
    );
    let hub = hub(spool, recovered, &[("a", &a), ("b", &b)], (1 << 20, 1000));
    (dir, hub)
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// The write guard is held across awaits on purpose: it keeps the syncing thread's fsync
// from starting (`Spool::hold_sync`).
#[allow(clippy::await_holding_lock, clippy::readonly_write_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_is_answered_before_the_fsync_once_every_target_has_the_event() {
    let (_dir, hub) = fsyncing_hub([200, 204]).await;
    let held = hub.inner.spool.hold_sync.write().unwrap();
    let (spooled, judged, answer) = submit(&hub, event(1));
    let acknowledged = tokio::time::timeout(
        Duration::from_secs(30),
        hub.acknowledged(spooled, &judged, &answer),
    )
    .await
    .expect("answered while its fsync cannot start");
    assert_eq!(acknowledged, Ok((1, false)), "number 1, not yet durable");
    drop(held);
    hub.shutdown().await;
}

// The write guard is held across awaits on purpose: it keeps the syncing thread's fsync
// from starting (`Spool::hold_sync`).
#[allow(clippy::await_holding_lock, clippy::readonly_write_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_waits_for_the_fsync_when_a_target_failed_its_first_attempt() {
    use futures_util::FutureExt;
    let (_dir, hub) = fsyncing_hub([200, 500]).await;
    let held = hub.inner.spool.hold_sync.write().unwrap();
    let (spooled, judged, answer) = submit(&hub, event(1));
    until("both first attempts", || answer.has("a") && answer.has("b")).await;
    let mut acknowledged = Box::pin(hub.acknowledged(spooled, &judged, &answer));
    assert!(
        (&mut acknowledged).now_or_never().is_none(),
        "b answered 500: the event needs the disk"
    );
    drop(held);
    let acknowledged = tokio::time::timeout(Duration::from_secs(30), acknowledged)
        .await
        .expect("answered once the fsync ran");
    assert_eq!(acknowledged, Ok((1, true)), "number 1, durable");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_behind_the_memory_budget_reads_the_spool_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, recovered) = Spool::open(dir.path(), false).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (open, opened) = watch::channel(false);
    let url = holding_target(seen.clone(), opened).await;
    // Room in memory for about four events of 1 KB.
    let hub = hub(spool, recovered, &[("t", &url)], (4096, 1000));
    for i in 0..40 {
        let e = event(i);
        let judged = hub.judge(&e.body, &e.parsed);
        let mut spooled = hub.submit(e, judged.verdicts, Arc::new(Answer::default()));
        assert_eq!(spooled.durable().await, Ok(i as u64 + 1));
    }
    assert!(
        hub.inner.feed.bytes_in_memory() <= 4096 + 1100,
        "the feed keeps to its budget"
    );
    open.send(true).unwrap();
    let expected: Vec<String> = (0..40).map(|i| format!("evt_{i}")).collect();
    until("40 deliveries", || seen.lock().unwrap().len() >= 40).await;
    assert_eq!(
        *seen.lock().unwrap(),
        expected,
        "every event once, in order"
    );
    hub.shutdown().await;
}

/// Each segment sealed lets the one before it go at once, kept as the next spare: without that
/// (only the sweep every 200 ms letting segments go) a busy relay had always made its spare
/// already, full of zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_segment_lets_the_one_before_it_be_recycled_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, recovered) = Spool::open_with(dir.path(), true, 4096, Log::silent()).unwrap();
    let a = answering_target(200).await;
    let hub = hub(spool, recovered, &[("a", &a)], (1 << 20, 1000));
    let started = Instant::now();
    // Events of about 1.2 KB: three to a segment of 4 KiB.
    for i in 1..=40 {
        let (spooled, judged, answer) = submit(&hub, event(i));
        let (seq, _) = hub.acknowledged(spooled, &judged, &answer).await.unwrap();
        until("the target is done with it", || {
            hub.inner.state().cursors.values().all(|&c| c >= seq)
        })
        .await;
    }
    let elapsed = started.elapsed();
    let current = hub.inner.spool.current_segment().unwrap();
    let bytes = std::fs::read(&current).unwrap();
    assert!(
        bytes.starts_with(crate::fanout::recover::RECYCLED),
        "{} is not recycled, after {elapsed:?}",
        current.display()
    );
    hub.shutdown().await;
}
