//! `fanout --from-sqs` against moto's SQS (the real JSON protocol, reached by stripe-ops' signed
//! calls), delivering to receivers on stripe-python: both envelopes, routes, re-signing,
//! deletes only after a 2xx, retries through the visibility timeout, the redrive policy's
//! dead-letter queue, poison, a stop that acknowledges nothing undelivered, and a queue over
//! https whose certificate is checked.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::fanout::{Recorder, secret_file, signed, target};

const WAIT: Duration = Duration::from_secs(30);
const SECRET_A: &str = "whsec_sqsAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const SECRET_B: &str = "whsec_sqsBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// boto3 against moto: creates, sends, counts and reads queues for the tests.
const QUEUES: &str = r#"
import boto3, json, os, sys
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
op = json.load(sys.stdin)
if op["do"] == "create":
    dlq = sqs.create_queue(QueueName=op["name"] + "-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    q = sqs.create_queue(QueueName=op["name"], Attributes={
        "VisibilityTimeout": str(op.get("visibility", 30)),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(op["max_receives"])})})["QueueUrl"]
    print(json.dumps({"queue": q, "dlq": dlq}))
elif op["do"] == "send":
    for body in op["bodies"]:
        sqs.send_message(QueueUrl=op["queue"], MessageBody=body)
    print("{}")
elif op["do"] == "batch":
    bodies = op["bodies"]
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=op["queue"], Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i:i + 10])])
    print("{}")
elif op["do"] == "count":
    a = sqs.get_queue_attributes(QueueUrl=op["queue"], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    print(json.dumps({"visible": int(a["ApproximateNumberOfMessages"]), "not_visible": int(a["ApproximateNumberOfMessagesNotVisible"])}))
elif op["do"] == "drain":
    got = sqs.receive_message(QueueUrl=op["queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    print(json.dumps([m["Body"] for m in got]))
"#;

struct Aws {
    moto: Moto,
    /// The certificate boto3 trusts when moto serves https.
    ca: Option<std::path::PathBuf>,
}

impl Aws {
    fn start() -> Aws {
        Aws {
            moto: Moto::start(),
            ca: None,
        }
    }

    /// moto over https with a self-signed certificate made in `dir`.
    fn start_tls(dir: &Path) -> Aws {
        let (cert, key) = self_signed_certificate(dir);
        Aws {
            moto: Moto::start_tls(&cert, &key),
            ca: Some(cert),
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.moto.env();
        if let Some(ca) = &self.ca {
            env.push(("AWS_CA_BUNDLE", ca.display().to_string()));
        }
        env
    }

    fn op(&self, op: Value) -> Value {
        let env = self.env();
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut child = python()
            .arg("-c")
            .arg(QUEUES)
            .envs(envs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), op.to_string().as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(stdout(&o).trim()).unwrap()
    }

    /// A queue whose redrive policy moves a message to its DLQ after `max_receives`.
    fn queue(&self, name: &str, max_receives: u32) -> (String, String) {
        self.queue_with(name, max_receives, 30)
    }

    fn queue_with(&self, name: &str, max_receives: u32, visibility: u32) -> (String, String) {
        let v = self.op(json!({"do": "create", "name": name, "max_receives": max_receives, "visibility": visibility}));
        (
            v["queue"].as_str().unwrap().to_owned(),
            v["dlq"].as_str().unwrap().to_owned(),
        )
    }

    fn send(&self, queue: &str, bodies: &[String]) {
        self.op(json!({"do": "send", "queue": queue, "bodies": bodies}));
    }

    fn count(&self, queue: &str) -> (u64, u64) {
        let v = self.op(json!({"do": "count", "queue": queue}));
        (
            v["visible"].as_u64().unwrap(),
            v["not_visible"].as_u64().unwrap(),
        )
    }

    fn drain(&self, queue: &str) -> Vec<String> {
        serde_json::from_value(self.op(json!({"do": "drain", "queue": queue}))).unwrap()
    }

    /// `stripe-ops --json fanout --from-sqs …`, its start line and its log file.
    fn relay(&self, dir: &Path, args: &[&str]) -> (Proc, Value, std::path::PathBuf) {
        self.relay_trusting(dir, args, None)
    }

    /// `relay` with the system's certificate roots, or only `roots` (`SSL_CERT_FILE`, which
    /// the platform verifier reads on Linux).
    fn relay_trusting(
        &self,
        dir: &Path,
        args: &[&str],
        roots: Option<&Path>,
    ) -> (Proc, Value, std::path::PathBuf) {
        let log = dir.join(format!("relay-{}.log", stripe_ops::secret::random_alnum(6)));
        let mut cmd = bin();
        cmd.args(["--json", "fanout", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(self.env())
            .env_remove("AWS_ENDPOINT_URL") // the queue URL names the endpoint
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("SSL_CERT_DIR");
        match roots {
            Some(roots) => cmd.env("SSL_CERT_FILE", roots),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        let (proc, line) = spawn_announcing(cmd);
        let start: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "{e}: {line:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        (proc, start, log)
    }
}

fn status(start: &Value) -> Value {
    let url = start["status"].as_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

/// An EventBridge event as a rule's SQS target delivers it (Stripe's partner event source).
fn eventbridge(body: &str) -> String {
    let detail: Value = serde_json::from_str(body).unwrap();
    json!({
        "version": "0",
        "id": "0d7dd3a1-37a5-4b8f-9c5a-0123456789ab",
        "detail-type": detail["type"],
        "source": "aws.partner/stripe.com/ed_test_61RmY1c7bN7hZzTLf16RmY1c7bN7hZzTLf1",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

fn sigterm(child: &Child) {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn both_envelopes_reach_their_routed_targets_verified_poison_goes_to_the_dlq_and_the_queue_empties()
{
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (queue, dlq) = aws.queue("events", 3);
    let shop_a = Recorder::start(d, "a", Some(SECRET_A));
    let shop_b = Recorder::start(d, "b", Some(SECRET_B));
    let (customer, customer_body, _) = signed("customer.created", "whsec_unused", &[]);
    let (invoice, invoice_body, _) = signed("invoice.paid", "whsec_unused", &[]);
    aws.send(
        &queue,
        &[
            customer_body.clone(),
            "not json at all".into(),
            eventbridge(&invoice_body),
        ],
    );
    let (_relay, start, log) = aws.relay(
        d,
        &[
            "--from-sqs",
            &queue,
            "--target",
            &target("a", &shop_a),
            "--target-secret-file",
            &format!("a={}", secret_file(d, "a", SECRET_A)),
            "--target-events",
            "a=customer.*",
            "--target",
            &target("b", &shop_b),
            "--target-secret-file",
            &format!("b={}", secret_file(d, "b", SECRET_B)),
            "--target-events",
            "b=invoice.*",
        ],
    );
    let a = shop_a.wait_for(std::slice::from_ref(&customer));
    let b = shop_b.wait_for(std::slice::from_ref(&invoice));
    assert_eq!(a.len(), 1, "a gets its route only: {a:?}");
    assert_eq!(b.len(), 1, "b gets its route only: {b:?}");
    assert_eq!(a[0]["valid"], true, "re-signed with a's secret: {a:?}");
    assert_eq!(b[0]["valid"], true, "re-signed with b's secret: {b:?}");
    let s = poll("the counts", WAIT, || {
        let s = status(&start);
        let q = &s["queues"][0];
        // The poison is counted when it is taken, dead-lettered once the dead-letter queue has it.
        (q["delivered"] == 2 && q["poison"] == 1 && q["dead_lettered"] == 1).then_some(s.clone())
    });
    let q = &s["queues"][0];
    assert_eq!(
        (q["received"].clone(), q["dead_lettered"].clone()),
        (json!(3), json!(1)),
        "{s}"
    );
    poll("the queue to empty", WAIT, || {
        (aws.count(&queue) == (0, 0)).then_some(())
    });
    assert_eq!(
        aws.drain(&dlq),
        vec!["not json at all".to_owned()],
        "the poison, at once"
    );
    // The relay writes its log in batches up to 10 ms after a line: wait for it.
    let log = poll("the poison's log line", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("not JSON: moved to the dead-letter queue")
            .then_some(text)
    });
    assert!(
        log.contains("not JSON: moved to the dead-letter queue"),
        "{log}"
    );
    assert!(
        log.contains("(eventbridge, receive 1): delivered")
            && log.contains("(raw, receive 1): delivered"),
        "{log}"
    );
}

#[test]
fn a_failed_delivery_comes_back_after_its_backoff_and_one_that_never_succeeds_is_dead_lettered() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (queue, dlq) = aws.queue("flaky", 2);
    // Answers 500 the first time it sees an event, 200 after.
    let flaky = Recorder::start_with(d, "flaky", Some(SECRET_A), 0, &[("FLAKY", "1")]);
    let (id, body, _) = signed("customer.subscription.created", "whsec_unused", &[]);
    aws.send(&queue, std::slice::from_ref(&body));
    let (_relay, start, _) = aws.relay(
        d,
        &[
            "--from-sqs",
            &queue,
            "--target",
            &target("flaky", &flaky),
            "--target-secret-file",
            &format!("flaky={}", secret_file(d, "a", SECRET_A)),
            "--retry-base",
            "1s",
        ],
    );
    let got = poll("the second delivery", WAIT, || {
        let got = flaky.received();
        (got.iter().filter(|r| r["id"] == id.as_str()).count() == 2).then_some(got)
    });
    assert_eq!(
        (got[0]["status"].clone(), got[1]["status"].clone()),
        (json!(500), json!(200))
    );
    poll("the queue to empty", WAIT, || {
        (aws.count(&queue) == (0, 0)).then_some(())
    });
    let s = status(&start);
    assert_eq!(
        (
            s["queues"][0]["retried"].clone(),
            s["queues"][0]["delivered"].clone()
        ),
        (json!(1), json!(1)),
        "{s}"
    );

    // A target that is down: after the queue's 2 receives SQS moves the message to the DLQ.
    let (down_queue, down_dlq) = aws.queue("down", 2);
    let (lost, lost_body, _) = signed("invoice.payment_failed", "whsec_unused", &[]);
    aws.send(&down_queue, std::slice::from_ref(&lost_body));
    let (_down, start, log) = aws.relay(
        d,
        &[
            "--from-sqs",
            &down_queue,
            "--target",
            &format!("gone={}", closed_url()),
            "--target-secret-file",
            &format!("gone={}", secret_file(d, "g", SECRET_B)),
            "--retry-base",
            "1s",
        ],
    );
    let s = poll("the dead-lettering", WAIT, || {
        let s = status(&start);
        (s["queues"][0]["dead_lettered"] == 1).then_some(s)
    });
    assert_eq!(s["queues"][0]["retried"], 1, "{s}");
    poll("the dead-letter queue's depth in /status", WAIT, || {
        let s = status(&start);
        (s["queues"][0]["backlog"]["dead_letter_messages"] == 1).then_some(())
    });
    let moved = poll("the message in the DLQ", WAIT, || {
        let got = aws.drain(&down_dlq);
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(moved, vec![lost_body]);
    let log = poll("the give-up's log line", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains(&format!("{lost}: not delivered after 2 receives"))
            .then_some(text)
    });
    assert!(
        log.contains(&format!(
            "{lost}: not delivered after 2 receives: the queue's redrive policy moves it to"
        )),
        "{log}"
    );
    assert!(
        aws.drain(&dlq).is_empty(),
        "nothing of the first queue was dead-lettered"
    );
}

#[test]
fn sigterm_acknowledges_nothing_undelivered_and_leaves_it_visible() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (queue, _) = aws.queue("slow", 5);
    // Slower than the relay's --timeout: the attempt in flight at the stop fails.
    let slow = Recorder::start_with(d, "slow", Some(SECRET_A), 0, &[("DELAY", "3")]);
    let (id, body, _) = signed("charge.refunded", "whsec_unused", &[]);
    aws.send(&queue, std::slice::from_ref(&body));
    let (mut relay, _start, log) = aws.relay(
        d,
        &[
            "--from-sqs",
            &queue,
            "--target",
            &target("slow", &slow),
            "--target-secret-file",
            &format!("slow={}", secret_file(d, "a", SECRET_A)),
            "--timeout",
            "2s",
        ],
    );
    poll("the delivery to start", WAIT, || {
        std::fs::read_to_string(slow.out_path())
            .unwrap_or_default()
            .contains(&id)
            .then_some(())
    });
    sigterm(&relay.0);
    let exit = poll("the relay to stop", WAIT, || relay.0.try_wait().unwrap());
    assert_eq!(exit.code(), Some(0));
    assert_eq!(
        aws.count(&queue),
        (1, 0),
        "visible again at once, not deleted"
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("visible again in 0 s"), "{log}");
}

/// A queue over https: SQS's certificate is checked against the system's roots, so one they do
/// not vouch for is refused, said in the log, and nothing is taken from the queue; trusted, the
/// same queue's events are delivered and deleted.
#[test]
fn from_sqs_over_https_checks_the_queue_endpoint_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let aws = Aws::start_tls(d);
    let (queue, _) = aws.queue("tls", 3);
    assert!(queue.starts_with("https://127.0.0.1:"), "{queue}");
    let receiver = Recorder::start(d, "r", Some(SECRET_A));
    let (customer, body, _) = signed("customer.created", "whsec_unused", &[]);
    aws.send(&queue, &[body]);
    let secret = format!("r={}", secret_file(d, "a", SECRET_A));
    let args = [
        "--from-sqs",
        &queue,
        "--target",
        &target("r", &receiver),
        "--target-secret-file",
        &secret,
    ];
    let (untrusting, _, log) = aws.relay_trusting(d, &args, None);
    let refused = poll("the certificate refused", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.to_lowercase().contains("certificate").then_some(text)
    });
    assert!(refused.contains(&format!("sqs {queue}")), "{refused}");
    drop(untrusting);
    assert_eq!(aws.count(&queue), (1, 0), "nothing was received");
    assert!(receiver.ids().is_empty());
    let (_trusting, _, _) = aws.relay_trusting(d, &args, aws.ca.as_deref());
    let got = receiver.wait_for(std::slice::from_ref(&customer));
    assert_eq!(got[0]["valid"], true, "re-signed: {got:?}");
    poll("the queue to empty", WAIT, || {
        (aws.count(&queue) == (0, 0)).then_some(())
    });
}

#[test]
fn from_sqs_refuses_what_cannot_work_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = secret_file(d, "a", SECRET_A);
    let queue = "http://127.0.0.1:9/123456789012/q";
    let signing = format!("a={secret}");
    let target = [
        "--target",
        "a=http://127.0.0.1:9/",
        "--target-secret-file",
        &signing,
    ];
    let from_queue = ["--from-sqs", queue];
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["--from-sqs", queue, "--target", "a=http://127.0.0.1:9/"],
            "target a has no --target-secret-file",
        ),
        (
            [&from_queue[..], &target, &["--max-spool", "1GiB"]].concat(),
            "--max-spool does not go with --from-sqs",
        ),
        (
            [&from_queue[..], &target, &["--verify-secret-file", &secret]].concat(),
            "--verify-secret-file does not go with --from-sqs",
        ),
        (
            [&["--from-sqs", "not a url"][..], &target].concat(),
            "is not a queue URL",
        ),
    ];
    for (args, expected) in cases {
        let o = run(&[&["fanout", "--listen", "127.0.0.1:0"], &args[..]].concat());
        assert_code(&o, 2);
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

/// How many events flow through the three relays (`STRIPE_OPS_SQS_EVENTS`, default 300; the
/// closing note of issue 24 reports a run with 2,000).
fn flow() -> usize {
    std::env::var("STRIPE_OPS_SQS_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

#[test]
fn three_relays_on_one_queue_one_killed_and_one_receiver_down_deliver_every_event_at_least_once() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A short visibility timeout: what the killed relay held comes back soon.
    let (queue, dlq) = aws.queue_with("shared", 50, 5);
    let shop_a = Recorder::start_with(d, "a", Some(SECRET_A), 0, &[("THREADED", "1")]);
    let b_port = free_port();
    let b_url = format!("http://127.0.0.1:{b_port}/hook");
    let events: Vec<(String, String)> = (0..flow())
        .map(|_| {
            let (id, body, _) = signed("checkout.session.completed", "whsec_unused", &[]);
            (id, body)
        })
        .collect();
    let bodies: Vec<String> = events.iter().map(|(_, b)| b.clone()).collect();
    let args = |i: usize| -> Vec<String> {
        vec![
            "--from-sqs".into(),
            queue.clone(),
            "--target".into(),
            target("a", &shop_a),
            "--target-secret-file".into(),
            format!("a={}", secret_file(d, &format!("a{i}"), SECRET_A)),
            "--target".into(),
            format!("b={b_url}"),
            "--target-secret-file".into(),
            format!("b={}", secret_file(d, &format!("b{i}"), SECRET_B)),
            "--retry-base".into(),
            "1s".into(),
            "--retry-max".into(),
            "2s".into(),
        ]
    };
    let relays: Vec<_> = (0..3)
        .map(|i| {
            let a = args(i);
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            aws.relay(d, &refs)
        })
        .collect();
    aws.op(json!({"do": "batch", "queue": queue, "bodies": bodies}));
    // Relay 0 dies mid-stream, with whatever it had received.
    poll("some deliveries", WAIT, || {
        (shop_a.received().len() >= flow() / 10).then_some(())
    });
    let mut relays = relays.into_iter();
    let (mut killed, _, _) = relays.next().unwrap();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    let survivors: Vec<_> = relays.collect();
    // Receiver b comes up only now.
    let shop_b = Recorder::start_with(d, "b", Some(SECRET_B), b_port, &[("THREADED", "1")]);
    let ids: HashSet<String> = events.iter().map(|(id, _)| id.clone()).collect();
    // moto's SQS is one Python process, about 15-70 messages a second on this machine: the
    // deadline grows with the flow.
    let deadline = Duration::from_secs(60 + flow() as u64 / 5);
    let got_a = poll(
        &format!("a to get all {} events", ids.len()),
        deadline,
        || {
            let seen: HashSet<String> = shop_a.ids().into_iter().collect();
            (seen == ids).then(|| shop_a.received())
        },
    );
    assert!(
        got_a.iter().all(|r| r["valid"] == true),
        "a: every delivery verified"
    );
    poll("the queue to empty", deadline, || {
        (aws.count(&queue) == (0, 0)).then_some(())
    });
    // What b missed while it was down may have used up its receives: then it is in the DLQ,
    // whose depth every relay's /status reports.
    let waiting = status(&survivors[0].1)["queues"][0]["backlog"]["dead_letter_messages"]
        .as_u64()
        .expect("the dead-letter queue's depth in /status");
    let mut dead: Vec<String> = Vec::new();
    loop {
        let batch = aws.drain(&dlq);
        if batch.is_empty() {
            break;
        }
        dead.extend(batch);
    }
    let dead_ids: HashSet<String> = dead
        .iter()
        .map(|b| {
            serde_json::from_str::<Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let got_b = shop_b.received();
    assert!(
        got_b.iter().all(|r| r["valid"] == true),
        "b: every delivery verified"
    );
    let seen_b: HashSet<String> = got_b
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let reached: HashSet<String> = seen_b.union(&dead_ids).cloned().collect();
    assert_eq!(reached, ids, "every event reached b or waits in the DLQ");
    let counted: u64 = survivors
        .iter()
        .map(|(_, start, _)| {
            status(start)["queues"][0]["dead_lettered"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(
        waiting as usize,
        dead.len(),
        "/status names the dead-letter queue's depth"
    );
    // The relays count what they saw fail at the last receive. moto hands one message to two
    // concurrent receivers with the same receive count (six threads, 2,000 messages, no
    // deletes: 2,343 copies), so a message can reach the DLQ with no relay seeing its last
    // failure: the counts are a floor, the DLQ's depth is the number.
    assert_eq!(counted == 0, dead.is_empty(), "dead letters are counted");
    eprintln!(
        "{} events: a got {} deliveries ({} duplicates, same ids), b {} distinct, {} dead-lettered ({} seen by the relays)",
        ids.len(),
        got_a.len(),
        got_a.len() - ids.len(),
        seen_b.len(),
        dead.len(),
        counted
    );
}

#[test]
fn a_target_with_its_own_queue_reads_only_that_queue() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (billing_q, _) = aws.queue("billing", 3);
    let (shared_q, _) = aws.queue("everything", 3);
    let billing = Recorder::start(d, "billing", Some(SECRET_A));
    let audit = Recorder::start(d, "audit", Some(SECRET_B));
    let (invoice, invoice_body, _) = signed("invoice.finalized", "whsec_unused", &[]);
    let (payout, payout_body, _) = signed("payout.paid", "whsec_unused", &[]);
    aws.send(&billing_q, &[eventbridge(&invoice_body)]);
    aws.send(&shared_q, &[payout_body]);
    let (_relay, start, _) = aws.relay(
        d,
        &[
            "--from-sqs",
            &shared_q,
            "--target",
            &target("billing", &billing),
            "--target-secret-file",
            &format!("billing={}", secret_file(d, "a", SECRET_A)),
            "--target-queue",
            &format!("billing={billing_q}"),
            "--target",
            &target("audit", &audit),
            "--target-secret-file",
            &format!("audit={}", secret_file(d, "b", SECRET_B)),
        ],
    );
    let mut queues: Vec<String> = serde_json::from_value(start["from_sqs"].clone()).unwrap();
    queues.sort();
    let mut expected = vec![billing_q.clone(), shared_q.clone()];
    expected.sort();
    assert_eq!(queues, expected, "{start}");
    assert_eq!(billing.wait_for(std::slice::from_ref(&invoice)).len(), 1);
    assert_eq!(audit.wait_for(std::slice::from_ref(&payout)).len(), 1);
    poll("both queues to empty", WAIT, || {
        (aws.count(&billing_q) == (0, 0) && aws.count(&shared_q) == (0, 0)).then_some(())
    });
    assert!(
        !billing.ids().contains(&payout),
        "billing reads its own queue only"
    );
    assert!(
        !audit.ids().contains(&invoice),
        "audit does not read billing's queue"
    );
}

#[test]
fn sighup_rereads_the_targets_and_their_secrets_and_the_relay_goes_on() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (queue, _) = aws.queue("reload", 5);
    let receiver = Recorder::start_with(d, "r", Some(SECRET_B), 0, &[]);
    let secret = secret_file(d, "a", SECRET_A);
    let (mut relay, start, log) = aws.relay(
        d,
        &[
            "--from-sqs",
            &queue,
            "--target",
            &target("r", &receiver),
            "--target-secret-file",
            &format!("r={secret}"),
        ],
    );
    // The receiver's secret is rotated: the file now holds B, and SIGHUP says so to the relay.
    std::fs::write(&secret, SECRET_B).unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &relay.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    poll("the reload", WAIT, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("reloaded: targets [r] re-read")
            .then_some(())
    });
    assert!(relay.0.try_wait().unwrap().is_none(), "SIGHUP is no stop");
    let (id, body, _) = signed("charge.refunded", "whsec_unused", &[]);
    aws.send(&queue, &[body]);
    poll("the event signed with the new secret", WAIT, || {
        std::fs::read_to_string(receiver.out_path())
            .unwrap_or_default()
            .contains(&id)
            .then_some(())
    });
    assert_eq!(status(&start)["queues"][0]["dead_letter"], "known");
    sigterm(&relay.0);
    let exit = poll("the relay to stop", WAIT, || relay.0.try_wait().unwrap());
    assert_eq!(exit.code(), Some(0));
}

/// In front of moto: every `AmazonSQS.GetQueueAttributes` is a 500 while the file `FLAG`
/// exists; everything else is passed through.
const FAULT_PROXY: &str = r#"
import http.server, os, sys, urllib.request, urllib.error
UPSTREAM, FLAG = os.environ["UPSTREAM"], os.environ["FLAG"]
class P(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("X-Amz-Target") == "AmazonSQS.GetQueueAttributes" and os.path.exists(FLAG):
            out = b'{"__type": "com.amazonaws.sqs#InternalError", "message": "injected"}'
            self.send_response(500)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        req = urllib.request.Request(UPSTREAM + self.path, data=body, headers=headers, method="POST")
        try:
            resp = urllib.request.urlopen(req, timeout=60)
            status, out, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, out, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), P)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn a_failed_get_queue_attributes_is_not_taken_for_no_dead_letter_queue() {
    let aws = Aws::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (queue, dlq) = aws.queue("faulty", 5);
    let flag = d.join("fail-get-queue-attributes");
    std::fs::write(&flag, "").unwrap();
    let mut cmd = python();
    cmd.arg("-c")
        .arg(FAULT_PROXY)
        .env("UPSTREAM", &aws.moto.url)
        .env("FLAG", &flag);
    let (_proxy, port) = spawn_announcing(cmd);
    // The relay reaches SQS through the proxy: the queue URL names the endpoint.
    let moto_port = aws
        .moto
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/');
    let proxied = queue.replacen(moto_port, &port, 1);
    let receiver = Recorder::start(d, "r", Some(SECRET_A));
    let (_relay, start, log) = aws.relay(
        d,
        &[
            "--from-sqs",
            &proxied,
            "--target",
            &target("r", &receiver),
            "--target-secret-file",
            &format!("r={}", secret_file(d, "a", SECRET_A)),
        ],
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    aws.send(&queue, &["first poison".to_owned()]);
    poll("the poison with its DLQ unknown", WAIT, || {
        read_log()
            .contains("the dead-letter queue is unknown")
            .then_some(())
    });
    assert!(!read_log().contains("hidden for"), "{}", read_log());
    assert_eq!(status(&start)["queues"][0]["dead_letter"], "unknown");
    // SQS answers again: the next poison goes to the dead-letter queue.
    std::fs::remove_file(&flag).unwrap();
    aws.send(&queue, &["second poison".to_owned()]);
    poll("the second poison dead-lettered", WAIT, || {
        read_log()
            .contains("moved to the dead-letter queue")
            .then_some(())
    });
    assert_eq!(aws.drain(&dlq), vec!["second poison".to_owned()]);
    assert_eq!(status(&start)["queues"][0]["dead_letter"], "known");
}
