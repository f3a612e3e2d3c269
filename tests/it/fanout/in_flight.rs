//! Deliveries in flight at once (`--in-flight`): a healthy target never gets more than that many,
//! and failures among concurrent deliveries are retried in order until each event is delivered.

use super::*;

#[test]
fn a_healthy_target_gets_at_most_in_flight_deliveries_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = Recorder::start_with(d, "slow", None, 0, &[("DELAY", "0.4"), ("THREADED", "1")]);
    let relay = Fanout::start_local(d, &["--target", &target("slow", &slow), "--in-flight", "3"]);
    let events: Vec<_> = (0..8)
        .map(|_| signed("customer.created", INCOMING, &[]))
        .collect();
    let answers: Vec<_> = std::thread::scope(|s| {
        let sends: Vec<_> = events
            .iter()
            .map(|(_, body, header)| s.spawn(|| post(&relay.webhook, body, header)))
            .collect();
        sends.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // A new target counts as slow once an attempt has run 100 ms (`SLOW_FLOOR`): answers then
    // report it pending instead of waiting; none says it failed.
    for answer in answers {
        let (status, answer) = answer.unwrap();
        assert_eq!(status, 200, "{answer}");
        let t = &answer["targets"][0];
        assert!(t["ok"] == true || t["pending"] == true, "{answer}");
    }
    let ids: Vec<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    slow.wait_for(&ids);
    // Replay the receiver's log: +1 when a request started, -1 when it finished.
    let (mut now, mut most) = (0i32, 0i32);
    for line in std::fs::read_to_string(&slow.out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        now += if v.get("started").is_some() { 1 } else { -1 };
        most = most.max(now);
    }
    assert_eq!(most, 3, "deliveries in flight at once");
    relay.wait_spool_empty();
    assert_eq!(relay.target("slow")["delivered"], 8);
}

#[test]
fn failures_among_concurrent_deliveries_are_retried_in_order_and_each_event_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flaky = Recorder::start_with(d, "flaky", None, 0, &[("FLAKY", "1"), ("THREADED", "1")]);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("flaky", &flaky),
            "--in-flight",
            "4",
            "--retry-base",
            "10ms",
            "--retry-max",
            "50ms",
        ],
    );
    let events: Vec<_> = (0..10)
        .map(|_| signed("invoice.paid", INCOMING, &[]))
        .collect();
    std::thread::scope(|s| {
        for (_, body, header) in &events {
            s.spawn(|| assert_eq!(post(&relay.webhook, body, header).unwrap().0, 200));
        }
    });
    relay.wait_spool_empty();
    let t = relay.target("flaky");
    assert_eq!(
        (t["delivered"].clone(), t["pending"].clone()),
        (10.into(), 0.into()),
        "{t}"
    );
    assert_eq!(t["failed_attempts"], 10, "each event failed once: {t}");
    assert_eq!(t["failing_since"], Value::Null, "{t}");
    assert_eq!(t["cursor"], relay.status()["spool"]["last_seq"], "{t}");
    let got = flaky.received();
    for (id, _, _) in &events {
        let statuses: Vec<&Value> = got
            .iter()
            .filter(|r| r["id"] == id.as_str())
            .map(|r| &r["status"])
            .collect();
        assert_eq!(statuses, [&Value::from(500), &Value::from(200)], "{id}");
    }
    // Once the target failed, events went one at a time, in order: the successful deliveries
    // arrive in sequence order (the order the relay gave them).
    let log = relay.log_when("the ten deliveries", |log| {
        log.lines()
            .filter(|l| l.contains("target flaky") && l.contains(": delivered"))
            .count()
            == 10
    });
    let delivered: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("target flaky") && l.contains(": delivered"))
        .map(|l| {
            let hash = l.find(" #").unwrap() + 2;
            l[hash..].split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort();
    assert_eq!(delivered, sorted, "{log}");
}
