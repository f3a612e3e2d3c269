//! Every `stripe trigger` of the pinned Stripe CLI against one sandbox, offline, with a
//! `stripe listen` forwarding to a stripe-node receiver; and Stripe's types over everything
//! those runs produced.
//!
//! The list of triggers is the CLI's own `stripe trigger --help`, so a new CLI release shows its
//! new triggers as failing, not as absent. tests/it/sandbox/triggers.json says, per trigger, the
//! events Stripe emits for its fixture's calls, in order, and which triggers do not run yet and
//! why (`not_yet`): each of those must still fail, every other one must exit 0 with exactly its
//! events, in Stripe's order, all of them received by the listener.
//!
//! Triggers run in parallel, each through a recording proxy of its own worker: the proxy notes
//! the `Request-Id` of every answer, and Stripe puts the request that caused an event in its
//! `request.id`, so each event of the sandbox's log belongs to exactly one trigger. The answers
//! the proxies saw and the events are then compiled under `tsc --strict` as stripe-node's types
//! and read through stripe-python (tests/receivers/oracle.{mjs,py}).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::stripe_cli::{Cli, node_recorder, seen};
use super::*;

/// The sandbox's API version for these runs: the newest one that still takes every parameter
/// the CLI's fixtures send (Stripe removed customers' `coupon` at 2025-03-31.basil, promotion
/// codes' `coupon` at 2025-09-30.clover, intents' `payment_method_types` at 2026-09-30.endive:
/// src/sandbox/stripe/versions.toml). At the newest version Stripe refuses those calls, and so
/// does the sandbox (stripe_api.rs tests it).
const API_VERSION: &str = "2025-02-24.acacia";
const WORKERS: usize = 4;
const WAIT: Duration = Duration::from_secs(60);

/// One answer a proxy saw.
#[derive(Clone)]
struct Answer {
    trigger: String,
    path: String,
    status: u16,
    request_id: String,
    body: Value,
}

/// A recording proxy in front of the sandbox's Stripe API (it forwards everything as given).
struct Proxy {
    url: String,
    trigger: Arc<Mutex<String>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

#[derive(Clone)]
struct Forward {
    target: String,
    http: reqwest::Client,
    trigger: Arc<Mutex<String>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

async fn forward(
    axum::extract::State(f): axum::extract::State<Forward>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 8 << 20).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut out = f
        .http
        .request(parts.method.clone(), format!("{}{path}", f.target))
        .body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let resp = out.send().await.unwrap();
    let status = resp.status();
    let request_id = resp
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.bytes().await.unwrap();
    f.answers.lock().unwrap().push(Answer {
        trigger: f.trigger.lock().unwrap().clone(),
        path: parts.uri.path().to_owned(),
        status: status.as_u16(),
        request_id,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    (status, [("content-type", "application/json")], body).into_response()
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let trigger = Arc::new(Mutex::new(String::new()));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let state = Forward {
            target: target.to_owned(),
            http: reqwest::Client::new(),
            trigger: trigger.clone(),
            answers: answers.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy {
            url,
            trigger,
            answers,
        }
    }
}

/// What one `stripe trigger` did.
struct Run {
    code: i32,
    output: String,
}

/// The triggers the pinned CLI's help lists.
fn help_triggers(cli: &Cli) -> Vec<String> {
    let o = cli
        .command_at(&["trigger", "--help"], &cli.sandbox.stripe_api)
        .output()
        .unwrap();
    let text = stdout(&o);
    let block = text
        .split("Supported events:")
        .nth(1)
        .expect("the help lists the supported events");
    block
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Funds on the platform's available balance before the triggers run, as a Stripe test account
/// that has taken payments has: the transfer fixtures charge $10.00 with
/// `pm_card_bypassPending` and transfer $10.00, more than the charge nets after Stripe's fee, so
/// on an account with nothing else they meet Stripe's `balance_insufficient`. Answers the ids of
/// the events the funding made (no trigger's).
async fn fund_the_platform(cli: &Cli) -> HashSet<String> {
    let http = reqwest::Client::new();
    let paid: Value = http
        .post(format!("{}/v1/payment_intents", cli.sandbox.stripe_api))
        .bearer_auth(&cli.key)
        .form(&[
            ("amount", "100000"),
            ("currency", "usd"),
            ("payment_method", "pm_card_bypassPending"),
            ("confirm", "true"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "succeeded", "{paid}");
    all_events(&http, cli, None)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The events of the platform, or (`account`) of one of its connected accounts still
/// connected (a connected account's are listed only with its `Stripe-Account`), oldest first.
async fn all_events(http: &reqwest::Client, cli: &Cli, account: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{}/v1/events?limit=100", cli.sandbox.stripe_api);
        if let Some(a) = &after {
            url.push_str(&format!("&starting_after={a}"));
        }
        let mut req = http.get(url).bearer_auth(&cli.key);
        if let Some(a) = account {
            req = req.header("Stripe-Account", a);
        }
        let resp = req.send().await.unwrap();
        if account.is_some() && resp.status() == 403 {
            // Deleted since (`account.application.deauthorized`): no longer the platform's.
            break;
        }
        let v: Value = resp.json().await.unwrap();
        let page = v["data"].as_array().cloned().unwrap_or_default();
        after = page
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned);
        out.extend(page);
        if v["has_more"] != true {
            break;
        }
    }
    out.reverse();
    out
}

/// The stripe-node type an answer must be, from the sandbox's generated API data.
struct Types(HashMap<String, (String, Option<String>)>);

impl Types {
    fn load() -> Types {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/api");
        let mut map = HashMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let v: Value =
                serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            let deleted = v["deleted"]["ts"].as_str().map(str::to_owned);
            map.insert(
                v["object"].as_str().unwrap().to_owned(),
                (v["ts"].as_str().unwrap().to_owned(), deleted),
            );
        }
        Types(map)
    }

    fn of(&self, body: &Value) -> Option<String> {
        let object = body["object"].as_str()?;
        if object == "list" {
            let item = body["data"]
                .get(0)
                .map_or(Some("unknown".to_owned()), |i| {
                    self.of(i).map(|t| format!("Stripe.{t}"))
                })?;
            return Some(format!("ApiList<{item}>"));
        }
        let (ts, deleted) = self.0.get(object)?;
        if body["deleted"] == true {
            deleted.clone()
        } else {
            Some(ts.clone())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_trigger_of_the_pinned_cli_runs_offline_with_stripes_events_in_order() {
    let data: Value = serde_json::from_str(include_str!("triggers.json")).unwrap();
    let expected = data["triggers"].as_object().unwrap();
    let not_yet = data["not_yet"].as_object().unwrap();
    let cli = Cli::start(&["--api-version", API_VERSION]);
    let secret = cli.print_secret();
    let (_recorder, recorder) = node_recorder(&secret, false);
    let _listen = cli.listen(&[
        "--all-snapshot",
        "--forward-to",
        &format!("{recorder}/webhook"),
    ]);
    let triggers = help_triggers(&cli);
    assert!(triggers.len() >= 123, "{triggers:?}");
    let funding = fund_the_platform(&cli).await;

    let started = Instant::now();
    let queue = Arc::new(Mutex::new(triggers.clone()));
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let mut proxies = Vec::new();
    let mut workers = Vec::new();
    let cli = Arc::new(cli);
    for _ in 0..WORKERS {
        let proxy = Proxy::start(&cli.sandbox.stripe_api).await;
        let (queue, runs, cli, label, url) = (
            queue.clone(),
            runs.clone(),
            cli.clone(),
            proxy.trigger.clone(),
            proxy.url.clone(),
        );
        workers.push(tokio::task::spawn_blocking(move || {
            while let Some(trigger) = queue.lock().unwrap().pop() {
                *label.lock().unwrap() = trigger.clone();
                let o = cli
                    .command_at(&["trigger", &trigger], &url)
                    .output()
                    .unwrap();
                let run = Run {
                    code: code(&o),
                    output: format!("{}{}", stdout(&o), stderr(&o)),
                };
                runs.lock().unwrap().insert(trigger, run);
            }
        }));
        proxies.push(proxy);
    }
    for w in workers {
        w.await.unwrap();
    }
    let wall = started.elapsed();
    let answers: Vec<Answer> = proxies
        .iter()
        .flat_map(|p| p.answers.lock().unwrap().clone())
        .collect();
    let trigger_of: HashMap<&str, &str> = answers
        .iter()
        .map(|a| (a.request_id.as_str(), a.trigger.as_str()))
        .collect();

    let http = reqwest::Client::new();
    let accounts: HashSet<&str> = answers
        .iter()
        .filter(|a| a.body["object"] == "account")
        .filter_map(|a| a.body["id"].as_str())
        .collect();
    let mut events = all_events(&http, &cli, None).await;
    events.retain(|e| !funding.contains(e["id"].as_str().unwrap()));
    for account in accounts {
        events.extend(all_events(&http, &cli, Some(account)).await);
    }
    // The listener got every one of them, verified by stripe-node.
    let ids: HashSet<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let got = eventually("the listener to receive every event", WAIT, || async {
        let v = seen(&http, &recorder).await;
        let got: HashSet<String> = v["accepted"]
            .as_array()?
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        ids.is_subset(&got).then_some(v)
    })
    .await;
    assert_eq!(got["refused"], 0, "every delivery verified");
    // A deleted account's events (`account.application.deauthorized`) can no longer be listed
    // with its Stripe-Account: the listener's copy, with its `account` and `request`, stands for
    // them.
    let deleted: HashSet<&str> = answers
        .iter()
        .filter(|a| a.body["object"] == "account" && a.body["deleted"] == true)
        .filter_map(|a| a.body["id"].as_str())
        .collect();
    let gone: Vec<Value> = eventually("the deleted accounts' events", WAIT, || async {
        let v = seen(&http, &recorder).await;
        let mut from: Vec<Value> = Vec::new();
        for a in v["accepted"].as_array()? {
            let account = a["account"].as_str().unwrap_or_default();
            let id = a["id"].as_str().unwrap();
            let new = !ids.contains(id) && from.iter().all(|f| f["id"] != id);
            if deleted.contains(account) && new {
                let request = json!({"id": a["request"]});
                from.push(
                    json!({"id": id, "type": a["type"], "account": account, "request": request}),
                );
            }
        }
        let accounts: HashSet<&str> = from.iter().filter_map(|f| f["account"].as_str()).collect();
        (accounts.len() == deleted.len()).then_some(from)
    })
    .await;
    let mut by_trigger: HashMap<&str, Vec<&Value>> = HashMap::new();
    for e in events.iter().chain(&gone) {
        let request = e["request"]["id"].as_str().unwrap_or_default();
        let owner = trigger_of
            .get(request)
            .unwrap_or_else(|| panic!("event {} of no trigger's request: {e}", e["id"]));
        by_trigger.entry(owner).or_default().push(e);
    }

    let runs = runs.lock().unwrap();
    let mut problems = Vec::new();
    let mut passing = 0;
    for trigger in &triggers {
        let run = &runs[trigger];
        let types: Vec<&str> = by_trigger
            .get(trigger.as_str())
            .into_iter()
            .flatten()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        let Some(want) = expected.get(trigger) else {
            problems.push(format!("{trigger}: a trigger of the CLI that triggers.json does not know (scripts/trigger-fixtures.py)"));
            continue;
        };
        let want: Vec<&str> = want["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let passes = run.code == 0 && types == want;
        match (passes, not_yet.get(trigger)) {
            (true, None) => passing += 1,
            (false, Some(_)) => {}
            (true, Some(_)) => {
                problems.push(format!("{trigger}: runs now; take it out of not_yet"))
            }
            (false, None) => {
                let tail: Vec<&str> = run.output.lines().rev().take(2).collect();
                problems.push(format!(
                    "{trigger}: exit {}, events {types:?}, Stripe emits {want:?}; {tail:?}",
                    run.code
                ));
            }
        }
    }
    for name in not_yet.keys() {
        if !triggers.contains(name) {
            problems.push(format!("{name}: in not_yet but not a trigger of this CLI"));
        }
    }
    eprintln!(
        "{passing} of {} triggers run, in {:.1} s with {WORKERS} at once",
        triggers.len(),
        wall.as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} trigger(s) off:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Stripe's types over every answer and event of the runs.
    let types = Types::load();
    let mut items: Vec<Value> = answers
        .iter()
        .filter(|a| (200..300).contains(&a.status))
        .filter_map(|a| {
            let ts = types.of(&a.body)?;
            Some(json!({"name": format!("{} {}", a.trigger, a.path), "body": a.body.to_string(), "ts": ts}))
        })
        .collect();
    let typed = items.len();
    assert!(
        typed > answers.len() / 2,
        "{typed} of {} answers typed",
        answers.len()
    );
    items.extend(events.iter().map(|e| json!({"name": format!("{} event", e["type"].as_str().unwrap()), "body": e.to_string()})));
    crate::catalogue::assert_typed_by_stripes_libraries(&items);
}
