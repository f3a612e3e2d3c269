//! The whole chain on loopback: checkouts paid in the sandbox (playing Stripe's Amazon
//! EventBridge event destination against moto) → EventBridge rules made by `eventbridge setup`
//! → one SQS queue per target → `fanout --from-sqs` → receivers on stripe-node and
//! stripe-python, each verifying with its own secret. And the v2 event destinations API as
//! stripe-node calls it, `eventbridge status` naming what is missing, `teardown` removing only
//! what setup made.
//!
//! Where moto 5.2.5 differs from AWS, and what the tests do about it:
//! - `PutPartnerEvents` puts partner events on the account's default bus
//!   (`moto/events/models.py`, `put_partner_events` → `put_events` without `EventBusName`);
//!   AWS puts them on the partner event bus named after the source;
//! - moto reads a bus name as what follows its last `/` in PutRule, PutTargets and DescribeRule,
//!   so no rule can be put on a partner bus (`aws.partner/stripe.com/ed_…`).
//!
//! So setup still makes the partner event bus (and the test checks it is there), but its rules
//! go on the default bus here (`STRIPE_OPS_EVENTBRIDGE_RULE_BUS=default`, a hidden setting for
//! emulators). The patterns, queues, policies and targets are the ones AWS gets; every pattern
//! names the partner event source, so on the default bus too it takes Stripe's events only.
//! moto also reports every event source as ACTIVE, associated or not.

use std::collections::BTreeSet;
use std::process::Stdio;

use super::*;
use crate::fanout::{Recorder, secret_file};
use crate::receivers::{node, receivers_dir};

const WAIT: Duration = Duration::from_secs(60);
const SECRET_TOPUPS: &str = "whsec_ebTOPUPSxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
const SECRET_CHECKOUTS: &str = "whsec_ebCHECKOUTSxxxxxxxxxxxxxxxxxxxxxxxxx";
const SECRET_CUSTOMERS: &str = "whsec_ebCUSTOMERSxxxxxxxxxxxxxxxxxxxxxxxx";

/// A sandbox playing Stripe against moto, and the key to its API.
struct Chain {
    moto: Moto,
    sb: Sandbox,
    key_file: String,
    key: String,
}

impl Chain {
    fn start() -> Chain {
        let moto = Moto::start();
        let mut cmd = bin();
        cmd.envs(moto.env());
        let sb = Sandbox::start_with(cmd, &["--aws-endpoint-url", &moto.url]);
        assert_eq!(
            sb.info["eventbridge_endpoint"],
            moto.url.as_str(),
            "{}",
            sb.info
        );
        let key_file = sb.info["stripe_key_file"].as_str().unwrap().to_owned();
        let key = std::fs::read_to_string(&key_file)
            .unwrap()
            .trim()
            .to_owned();
        Chain {
            moto,
            sb,
            key_file,
            key,
        }
    }

    /// `stripe-ops --json eventbridge SUB --env ENV …` against the sandbox and moto.
    fn bridge(&self, sub: &str, env: &str, args: &[&str]) -> std::process::Output {
        bin()
            .args(["--json", "eventbridge", sub, "--env", env])
            .args(["--stripe-api-base", &self.sb.stripe_api])
            .args(["--stripe-secret-key-file", &self.key_file])
            .args(args)
            .envs(self.moto.env())
            .env("STRIPE_OPS_EVENTBRIDGE_RULE_BUS", "default")
            .env("STRIPE_OPS_EVENTBRIDGE_POLL", "50ms")
            .env_remove("STRIPE_SECRET_KEY")
            .env_remove("STRIPE_API_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    async fn stripe(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let resp = reqwest::Client::new()
            .request(method, format!("{}{path}", self.sb.stripe_api))
            .bearer_auth(&self.key)
            .form(form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// boto3 against moto, for what the tests look at behind stripe-ops' back.
    fn boto(&self, code: &str) -> Value {
        let env = self.moto.env();
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, out, err) = run_python(
            &format!(
                "import boto3, json, os\nsqs = boto3.client('sqs')\nevents = boto3.client('events')\n{code}"
            ),
            &envs,
        );
        assert_eq!(status, 0, "{err}");
        serde_json::from_str(out.trim()).unwrap_or(Value::Null)
    }
}

/// `tests/receivers/recorder.js`: stripe-node's constructEvent with `secret`.
fn node_recorder(secret: &str) -> (Proc, String) {
    let mut cmd = node();
    cmd.arg(receivers_dir().join("recorder.js"))
        .current_dir(receivers_dir())
        .env("SECRET", secret)
        .env("NODE_ENV", "test");
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

async fn node_seen(url: &str) -> Value {
    reqwest::get(format!("{url}/seen"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn ids_of(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

async fn relay_status(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_checkouts_reach_each_receiver_through_eventbridge_and_sqs_exactly_as_routed() {
    let chain = Chain::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_topups_proc, topups) = node_recorder(SECRET_TOPUPS);
    let checkouts = Recorder::start(d, "checkouts", Some(SECRET_CHECKOUTS));
    let customers = Recorder::start(d, "customers", Some(SECRET_CUSTOMERS));
    let routes = [
        "--target",
        &format!("topups={topups}/webhook"),
        "--target-events",
        "topups=checkout.session.completed",
        "--target-match",
        "topups=data.object.amount_total=700",
        "--target",
        &format!("checkouts={}", checkouts.url),
        "--target-events",
        "checkouts=checkout.session.*",
        "--target",
        &format!("customers={}", customers.url),
        "--target-events",
        "customers=customer.*",
    ]
    .map(str::to_owned);
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();

    let o = chain.bridge("setup", "staging", &routes);
    assert_code(&o, 0);
    assert_no_leak(&o, &[&chain.key]);
    let setup = json_of(&o);
    let source = setup["event_source"].as_str().unwrap();
    assert!(source.starts_with("aws.partner/stripe.com/ed_"), "{setup}");
    assert!(
        setup["event_bus"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":event-bus/{source}")),
        "the partner event bus associates the source: {setup}"
    );
    let queue = |name: &str| -> String {
        setup["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["queue_url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The destination as Stripe's API shows it.
    let dest = chain
        .stripe(
            reqwest::Method::GET,
            &format!(
                "/v2/core/event_destinations/{}",
                setup["destination"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    assert_eq!(dest["amazon_eventbridge"]["aws_account_id"], "123456789012");
    assert_eq!(
        dest["amazon_eventbridge"]["aws_event_source_status"],
        "active"
    );
    assert_eq!(dest["event_payload"], "snapshot");
    let enabled: Vec<&str> = dest["enabled_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        enabled.contains(&"checkout.session.completed") && enabled.contains(&"customer.created")
    );
    assert!(!enabled.contains(&"*") && !enabled.iter().any(|e| e.starts_with("invoice.")));

    // Setup again changes nothing.
    let again = chain.bridge("setup", "staging", &[&routes[..], &["--dry-run"]].concat());
    assert_code(&again, 0);
    let steps = json_of(&again)["plan"]["steps"].as_array().unwrap().clone();
    assert!(steps.iter().all(|s| s["skipped"] == true), "{steps:#?}");

    let mut relay_args = Vec::new();
    for (name, secret) in [
        ("topups", SECRET_TOPUPS),
        ("checkouts", SECRET_CHECKOUTS),
        ("customers", SECRET_CUSTOMERS),
    ] {
        relay_args.push(format!(
            "--target-secret-file={name}={}",
            secret_file(d, name, secret)
        ));
        relay_args.push(format!("--target-queue={name}={}", queue(name)));
    }
    let mut cmd = bin();
    cmd.args(["--json", "fanout", "--listen", "127.0.0.1:0"])
        .args(&routes)
        .args(&relay_args)
        .envs(chain.moto.env())
        .env_remove("AWS_ENDPOINT_URL");
    let (_relay, line) = spawn_announcing(cmd);
    let start: Value = serde_json::from_str(&line).unwrap();

    let app = App::new(&chain.sb.app);
    for amount in [500, 700, 700, 900] {
        let t = app.topup(amount).await;
        let paid = stripe_ops::sandbox::pay_with_form_post(
            &app.http,
            &t.checkout_url,
            stripe_ops::sandbox::TEST_CARD,
        )
        .await
        .unwrap();
        assert!(matches!(paid, stripe_ops::sandbox::PayOutcome::Paid { .. }));
    }
    for email in ["a@example.com", "b@example.com"] {
        chain
            .stripe(reqwest::Method::POST, "/v1/customers", &[("email", email)])
            .await;
    }
    let events = chain
        .stripe(reqwest::Method::GET, "/v1/events", &[("limit", "100")])
        .await;
    let of = |f: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| f(e))
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let completed = of(&|e| e["type"] == "checkout.session.completed");
    let of_700 = of(&|e| {
        e["type"] == "checkout.session.completed" && e["data"]["object"]["amount_total"] == 700
    });
    let new_customers = of(&|e| e["type"] == "customer.created");
    assert_eq!(
        (completed.len(), of_700.len(), new_customers.len()),
        (4, 2, 2)
    );

    // Every queue empties (each message deleted after its 2xx) and each receiver has its set.
    let status_url = start["status"].as_str().unwrap().to_owned();
    poll("every queue empty and every receiver served", WAIT, || {
        let rt = tokio::runtime::Handle::current();
        let (s, node) = tokio::task::block_in_place(|| {
            rt.block_on(async { (relay_status(&status_url).await, node_seen(&topups).await) })
        });
        let empty = s["queues"].as_array()?.iter().all(|q| {
            q["backlog"]["visible"] == 0 && q["backlog"]["not_visible"] == 0 && q["in_flight"] == 0
        });
        let served = node["accepted"].as_array()?.len() >= 2
            && checkouts.received().len() >= 4
            && customers.received().len() >= 2;
        (empty && served).then_some(())
    });
    let node = node_seen(&topups).await;
    assert_eq!(
        node["refused"], 0,
        "stripe-node verified every delivery: {node}"
    );
    assert_eq!(ids_of(node["accepted"].as_array().unwrap()), of_700);
    for (r, want) in [(&checkouts, &completed), (&customers, &new_customers)] {
        let got = r.received();
        assert!(
            got.iter().all(|g| g["valid"] == true),
            "stripe-python verified: {got:?}"
        );
        assert_eq!(&ids_of(&got), want);
    }
    // Each event went to EventBridge once, accepted.
    for id in completed.iter().chain(&new_customers) {
        let e = chain
            .stripe(reqwest::Method::GET, &attempts_path(id), &[])
            .await;
        let puts: Vec<&Value> = e["delivery_attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["endpoint"].as_str().unwrap().starts_with("ed_"))
            .collect();
        assert_eq!(puts.len(), 1, "{e}");
        assert_eq!(puts[0]["status"], 200);
    }

    let o = chain.bridge("status", "staging", &routes);
    assert_code(&o, 0);
    let pieces = json_of(&o)["pieces"].as_array().unwrap().clone();
    assert_eq!(pieces.len(), 3 + 3 * 5, "{pieces:#?}");

    let o = chain.bridge("teardown", "staging", &[]);
    assert_code(&o, 0);
    let removed = &json_of(&o)["removed"];
    assert_eq!(removed["queues"].as_array().unwrap().len(), 6, "{removed}");
    assert_eq!(removed["rules"].as_array().unwrap().len(), 3, "{removed}");
    let o = chain.bridge("status", "staging", &[]);
    assert_code(&o, 1);
    let left = chain.boto("print(json.dumps(sqs.list_queues().get('QueueUrls', [])))");
    assert_eq!(left, json!([]), "teardown leaves no queue of setup's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_what_is_missing_teardown_keeps_what_setup_did_not_make_and_production_asks() {
    let chain = Chain::start();
    let one = [
        "--target",
        "billing=http://127.0.0.1:9/b",
        "--target-events",
        "billing=invoice.*",
    ];

    let o = chain.bridge("setup", "production", &one);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    let none = chain
        .stripe(reqwest::Method::GET, "/v2/core/event_destinations", &[])
        .await;
    assert_eq!(
        none["data"],
        json!([]),
        "production without --yes changes nothing"
    );

    // A destination marked for qa whose source nobody associated.
    let qa = reqwest::Client::new()
        .post(format!(
            "{}/v2/core/event_destinations",
            chain.sb.stripe_api
        ))
        .bearer_auth(&chain.key)
        .json(
            &json!({"name": "qa", "type": "amazon_eventbridge", "event_payload": "snapshot",
            "enabled_events": ["*"], "metadata": {"stripe-ops-env": "qa"},
            "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}}),
        )
        .send()
        .await
        .unwrap();
    assert!(qa.status().is_success());
    let o = chain.bridge("status", "qa", &[]);
    assert_code(&o, 1);
    let source = json_of(&o)["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["what"] == "partner event source")
        .cloned()
        .unwrap();
    let detail = source["detail"].as_str().unwrap();
    assert!(
        source["ok"] == false && detail.contains("never associated") && detail.contains("7 days"),
        "{source}"
    );

    let o = chain.bridge("setup", "staging", &one);
    assert_code(&o, 0);
    let queue = json_of(&o)["targets"][0]["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    chain.boto(&format!(
        "sqs.set_queue_attributes(QueueUrl={queue:?}, Attributes={{'RedrivePolicy': ''}})\n\
         sqs.create_queue(QueueName='proofwork-staging-stripe-theirs')\nprint('null')"
    ));
    let o = chain.bridge("status", "staging", &one);
    assert_code(&o, 1);
    let missing: Vec<Value> = json_of(&o)["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ok"] == false)
        .cloned()
        .collect();
    // moto's SetQueueAttributes also drops the Policy it was not given (moto/sqs/models.py,
    // `_set_attributes`), which AWS keeps: so the queue policy is named too.
    let what: Vec<&str> = missing
        .iter()
        .map(|p| p["what"].as_str().unwrap())
        .collect();
    assert_eq!(what, ["dead-letter queue", "queue policy"], "{missing:#?}");
    assert!(
        missing[0]["detail"]
            .as_str()
            .unwrap()
            .contains("no redrive policy")
    );
    assert!(stderr(&o).contains("dead-letter queue"), "{}", stderr(&o));

    // Setup puts the redrive policy back.
    assert_code(&chain.bridge("setup", "staging", &one), 0);
    assert_code(&chain.bridge("status", "staging", &one), 0);

    let o = chain.bridge("teardown", "staging", &[]);
    assert_code(&o, 0);
    let kept = json_of(&o)["removed"]["kept"].clone();
    assert!(
        kept.to_string().contains("proofwork-staging-stripe-theirs"),
        "{kept}"
    );
    let left = chain.boto("print(json.dumps(sqs.list_queues().get('QueueUrls', [])))");
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
}

/// The sandbox's `/v2/core/event_destinations` through stripe-node 23's own client.
const DESTINATIONS_JS: &str = r#"
const Stripe = require('stripe');
const u = new URL(process.env.API);
const stripe = new Stripe(process.env.KEY, {host: u.hostname, port: u.port, protocol: 'http'});
(async () => {
  const made = await stripe.v2.core.eventDestinations.create({
    name: 'ops', type: 'amazon_eventbridge', event_payload: 'snapshot',
    enabled_events: ['customer.created'],
    amazon_eventbridge: {aws_account_id: '123456789012', aws_region: 'us-east-1'},
    metadata: {team: 'payments'},
  });
  const listed = [];
  for await (const d of stripe.v2.core.eventDestinations.list({limit: 1})) listed.push(d.id);
  const updated = await stripe.v2.core.eventDestinations.update(made.id, {enabled_events: ['customer.created', 'customer.updated']});
  const disabled = await stripe.v2.core.eventDestinations.disable(made.id);
  const enabled = await stripe.v2.core.eventDestinations.enable(made.id);
  const ping = await stripe.v2.core.eventDestinations.ping(made.id);
  const deleted = await stripe.v2.core.eventDestinations.del(made.id);
  let missing = null;
  try { await stripe.v2.core.eventDestinations.retrieve(made.id); } catch (e) { missing = e.statusCode; }
  console.log(JSON.stringify({made, listed, updated, disabled, enabled, ping, deleted, missing}));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_node_drives_the_v2_event_destinations_and_a_ping_reaches_eventbridge() {
    let chain = Chain::start();
    // A rule on the bus where moto puts partner events, to see what Stripe put.
    let dlq = chain.boto(
        "q = sqs.create_queue(QueueName='seen')['QueueUrl']\n\
         arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         events.put_rule(Name='all-stripe', EventPattern=json.dumps({'source': [{'prefix': 'aws.partner/stripe.com/'}]}))\n\
         events.put_targets(Rule='all-stripe', Targets=[{'Id': 'q', 'Arn': arn}])\n\
         print(json.dumps(q))",
    );
    let mut cmd = node();
    cmd.arg("-e")
        .arg(DESTINATIONS_JS)
        .current_dir(receivers_dir())
        .env("API", &chain.sb.stripe_api)
        .env("KEY", &chain.key);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let made = &v["made"];
    let id = made["id"].as_str().unwrap();
    assert!(id.starts_with("ed_"), "{made}");
    assert_eq!(made["object"], "v2.core.event_destination");
    assert_eq!(made["status"], "enabled");
    assert_eq!(
        made["amazon_eventbridge"]["aws_event_source_arn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some(id)
    );
    assert_eq!(
        made["amazon_eventbridge"]["aws_event_source_status"],
        "pending"
    );
    assert!(made["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["listed"], json!([id]));
    assert_eq!(
        v["updated"]["enabled_events"],
        json!(["customer.created", "customer.updated"])
    );
    assert_eq!(
        v["disabled"]["status_details"]["disabled"]["reason"],
        "user"
    );
    assert_eq!(v["enabled"]["status"], "enabled");
    assert_eq!(v["ping"]["type"], "v2.core.event_destination.ping");
    assert_eq!(v["ping"]["related_object"]["id"], id);
    assert_eq!(v["deleted"]["id"], id);
    assert_eq!(v["missing"], 404);

    let q = dlq.as_str().unwrap();
    let got = poll("the ping on EventBridge", WAIT, || {
        let v = chain.boto(&format!(
            "m = sqs.receive_message(QueueUrl={q:?}, WaitTimeSeconds=1).get('Messages', [])\n\
             print(json.dumps([json.loads(x['Body']) for x in m]))"
        ));
        v.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(got[0]["detail-type"], "v2.core.event_destination.ping");
    assert_eq!(got[0]["source"], format!("aws.partner/stripe.com/{id}"));
    assert_eq!(got[0]["detail"]["id"], v["ping"]["id"]);

    // Without an AWS endpoint to play the partner against, no source: disabled, as Stripe
    // reports a destination whose source is gone.
    let mut cmd = bin();
    cmd.env_remove("AWS_ENDPOINT_URL");
    let alone = Sandbox::start_with(cmd, &[]);
    let key = std::fs::read_to_string(alone.info["stripe_key_file"].as_str().unwrap()).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/v2/core/event_destinations", alone.stripe_api))
        .bearer_auth(key.trim())
        .json(&json!({"name": "x", "type": "amazon_eventbridge", "event_payload": "snapshot",
            "enabled_events": ["*"], "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}}))
        .send()
        .await
        .unwrap();
    let d: Value = resp.json().await.unwrap();
    assert_eq!(d["status"], "disabled", "{d}");
    assert_eq!(
        d["status_details"]["disabled"]["reason"],
        "no_aws_event_source_exists"
    );
    let refused_by_stripe = bin()
        .args(["--json", "eventbridge", "setup", "--env", "staging"])
        .args(["--stripe-api-base", &alone.stripe_api])
        .args([
            "--stripe-secret-key-file",
            alone.info["stripe_key_file"].as_str().unwrap(),
        ])
        .args(["--target", "a=http://127.0.0.1:9/a"])
        .envs(chain.moto.env())
        .env_remove("STRIPE_SECRET_KEY")
        .output()
        .unwrap();
    assert_code(&refused_by_stripe, 3);
    assert!(
        stderr(&refused_by_stripe).contains("no_aws_event_source_exists"),
        "{}",
        stderr(&refused_by_stripe)
    );

    // A destination naming another account: Stripe makes the source there, so it never shows
    // in ours, and --wait-timeout bounds the wait.
    let began = std::time::Instant::now();
    let o = chain.bridge(
        "setup",
        "staging",
        &[
            "--target",
            "a=http://127.0.0.1:9/a",
            "--aws-account-id",
            "210987654321",
            "--wait-timeout",
            "2s",
        ],
    );
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("did not appear in the account within 2s"),
        "{}",
        stderr(&o)
    );
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "the wait is bounded"
    );

    let refused = reqwest::Client::new()
        .post(format!("{}/v2/core/event_destinations", alone.stripe_api))
        .bearer_auth(key.trim())
        .json(
            &json!({"name": "x", "type": "webhook_endpoint", "event_payload": "snapshot",
            "enabled_events": ["*"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

/// A thin destination gets the thin notification of a bad meter event on EventBridge (its
/// `detail`, no `data`), which stripe-node reads with `parseEventNotificationWithoutVerification`
/// (what Stripe's docs prescribe for EventBridge) and whose event the API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thin_destination_gets_the_meter_error_notifications_on_eventbridge() {
    let chain = Chain::start();
    let q = chain.boto(
        "q = sqs.create_queue(QueueName='thin')['QueueUrl']\n\
         arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
         events.put_rule(Name='thin-stripe', EventPattern=json.dumps({'source': [{'prefix': 'aws.partner/stripe.com/'}]}))\n\
         events.put_targets(Rule='thin-stripe', Targets=[{'Id': 'q', 'Arn': arn}])\n\
         print(json.dumps(q))",
    );
    let http = reqwest::Client::new();
    let api = &chain.sb.stripe_api;
    let made: Value = http
        .post(format!("{api}/v2/core/event_destinations"))
        .bearer_auth(&chain.key)
        .json(
            &json!({"name": "thin", "type": "amazon_eventbridge", "event_payload": "thin",
            "enabled_events": ["v1.billing.meter.no_meter_found"],
            "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap_or_else(|| panic!("{made}"));
    // The meter's thin twin (`v1.billing.meter.created`) is a type it does not take; the bad
    // event's notification is one it takes.
    for (path, form) in [
        (
            "/v1/billing/meters",
            vec![
                ("display_name", "Tokens"),
                ("event_name", "tokens"),
                ("default_aggregation[formula]", "sum"),
            ],
        ),
        (
            "/v1/billing/meter_events",
            vec![
                ("event_name", "nobody_meters_this"),
                ("payload[value]", "1"),
                ("identifier", "lost-usage"),
            ],
        ),
    ] {
        let resp = http
            .post(format!("{api}{path}"))
            .bearer_auth(&chain.key)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
    let q = q.as_str().unwrap();
    let got = poll("the thin notification on EventBridge", WAIT, || {
        let v = chain.boto(&format!(
            "m = sqs.receive_message(QueueUrl={q:?}, WaitTimeSeconds=1).get('Messages', [])\n\
             print(json.dumps([json.loads(x['Body']) for x in m]))"
        ));
        v.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["detail-type"], "v1.billing.meter.no_meter_found");
    assert_eq!(got[0]["source"], format!("aws.partner/stripe.com/{id}"));
    let detail = &got[0]["detail"];
    assert!(detail.get("data").is_none(), "thin: {detail}");

    let mut cmd = node();
    cmd.arg("-e")
        .arg(
            "const Stripe = require('stripe');\n\
             const u = new URL(process.env.API);\n\
             const stripe = new Stripe(process.env.KEY, {host: u.hostname, port: u.port, protocol: 'http'});\n\
             const n = stripe.parseEventNotificationWithoutVerification(process.env.DETAIL);\n\
             n.fetchEvent().then((e) => console.log(JSON.stringify({type: n.type, event: e})));",
        )
        .current_dir(receivers_dir())
        .env("API", api)
        .env("KEY", &chain.key)
        .env("DETAIL", detail.to_string());
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["type"], "v1.billing.meter.no_meter_found");
    assert_eq!(v["event"]["id"], detail["id"]);
    assert_eq!(
        v["event"]["data"]["reason"]["error_types"][0]["sample_errors"][0]["request"]["identifier"],
        "lost-usage"
    );
}
