//! The Stripe API side, through Stripe's own Python library and raw HTTP, and webhook delivery.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_stripe_python_library_uses_the_sandbox_api() {
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let (_, event_id) = paid_topup(&app, 1000).await;
    let code = r#"
import os, stripe
stripe.api_base = os.environ["API"]
stripe.api_key = os.environ["KEY"]
acct = stripe.Account.retrieve()
assert acct.id.startswith("acct_"), acct
created = [
    stripe.WebhookEndpoint.create(
        url="https://example.com/hook/%d" % i,
        enabled_events=["checkout.session.completed", "charge.refunded"],
        description="hook %d" % i,
    )
    for i in range(3)
]
for c in created:
    assert c.secret.startswith("whsec_"), "create returns the secret"
    assert c.status == "enabled" and c.livemode is False
    assert c.enabled_events == ["checkout.session.completed", "charge.refunded"]
page = stripe.WebhookEndpoint.list(limit=2)
assert page.object == "list" and len(page.data) == 2 and page.has_more
listed = [e.id for e in stripe.WebhookEndpoint.list(limit=2).auto_paging_iter()]
assert len(listed) == 4 and len(set(listed)) == 4, listed
assert set(c.id for c in created) <= set(listed)
app_hook = listed[-1]
assert stripe.WebhookEndpoint.retrieve(app_hook).url == os.environ["APP_HOOK"]
disabled = stripe.WebhookEndpoint.modify(created[0].id, disabled=True)
assert disabled.status == "disabled"
again = stripe.WebhookEndpoint.retrieve(created[0].id)
assert again.status == "disabled" and "secret" not in again
assert stripe.WebhookEndpoint.modify(created[0].id, disabled=False).status == "enabled"
deleted = stripe.WebhookEndpoint.delete(created[1].id)
assert deleted.deleted is True
try:
    stripe.WebhookEndpoint.retrieve(created[1].id)
    raise SystemExit("deleted endpoint still there")
except stripe.InvalidRequestError as e:
    assert e.code == "resource_missing", e.code
assert len(list(stripe.WebhookEndpoint.list().auto_paging_iter())) == 3
listed = stripe.Event.list(type="checkout.session.*", created={"gte": 0}, delivery_success=True)
assert [e.id for e in listed.data] == [os.environ["EVENT"]], listed
assert stripe.Event.list(types=["invoice.paid", "charge.refunded"]).data == []
assert stripe.Event.list(created={"gt": 4102444800}).data == []
assert stripe.Event.list(delivery_success=False).data == []
try:
    stripe.Event.list(type="a.b", types=["c.d"])
    raise SystemExit("type and types together accepted")
except stripe.InvalidRequestError as e:
    assert "either type or types" in e.user_message, e.user_message
event = stripe.Event.retrieve(os.environ["EVENT"])
assert event.type == "checkout.session.completed"
assert event.pending_webhooks == 0
assert event.data.object.metadata["orgId"].startswith("org_")
stripe.api_key = "sk_test_wrongwrongwrongwrong1234"
try:
    stripe.Account.retrieve()
    raise SystemExit("wrong key accepted")
except stripe.AuthenticationError as e:
    print("AUTH", e.user_message)
print("OK")
"#;
    let hook = format!("{}/api/webhooks/stripe", sb.app);
    let key = stripe_key(&sb);
    let (status, out, err) = run_python(
        code,
        &[
            ("API", sb.stripe_api.as_str()),
            ("KEY", key.as_str()),
            ("EVENT", event_id.as_str()),
            ("APP_HOOK", hook.as_str()),
        ],
    );
    assert_eq!(status, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("OK"), "{out}");
    assert!(
        out.contains("AUTH Invalid API Key provided: sk_test_****1234"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_api_errors_have_stripes_shape_and_never_echo_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let live = write_file(dir.path(), "key", "sk_live_sandboxLIVEkey0123456789");
    let sb = Sandbox::start(&["--stripe-key-file", live.to_str().unwrap()]);
    assert!(sb.info["stripe_key_file"].is_null());
    let http = reqwest::Client::new();
    let app = App::new(&sb.stripe_api);
    let url = format!("{}/v1/webhook_endpoints", sb.stripe_api);
    let (status, v) = app.send(http.get(&url).bearer_auth(CANARY_SK)).await;
    assert_eq!(status, 401);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "Invalid API Key provided: sk_test_****CDEF"
    );
    assert!(!v.to_string().contains(CANARY_SK));
    let (status, v) = app.send(http.get(&url)).await;
    assert_eq!(status, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not provide an API key")
    );

    let key = "sk_live_sandboxLIVEkey0123456789";
    let (status, v) = app.send(http.get(&url).bearer_auth(key)).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["livemode"], true, "livemode follows the key");
    let (status, v) = app
        .send(
            http.post(&url)
                .bearer_auth(key)
                .form(&[("enabled_events[]", "*")]),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "parameter_missing");
    assert_eq!(v["error"]["param"], "url");
    let (status, v) = app
        .send(http.post(&url).bearer_auth(key).form(&[
            ("url", "https://e.com"),
            ("enabled_events[]", "*"),
            ("bogus", "1"),
        ]))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "parameter_unknown");
    let (status, v) = app
        .send(http.get(format!("{url}/we_nope")).bearer_auth(key))
        .await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "resource_missing");
    let (status, v) = app
        .send(http.get(format!("{url}?limit=500")).bearer_auth(key))
        .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = app
        .send(
            http.get(format!("{}/v1/events/evt_nope", sb.stripe_api))
                .bearer_auth(key),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_signs_per_endpoint_and_retries_failures_with_backoff() {
    let sb = Sandbox::start(&["--delivery-attempts", "3", "--delivery-backoff", "20ms"]);
    let app = App::new(&sb.app);
    let key = stripe_key(&sb);
    let http = reqwest::Client::new();
    let create = |url: String| {
        let key = key.clone();
        let api = sb.stripe_api.clone();
        async move { create_endpoint(&api, &key, &[("url", &url), ("enabled_events[0]", "*")]).await }
    };
    // A second sandbox that only accepts the secret Stripe gave the endpoint it receives on.
    let dir = tempfile::tempdir().unwrap();
    let placeholder = create("https://example.invalid/hook".into()).await;
    let secret_file = write_file(
        dir.path(),
        "endpoint-secret",
        placeholder["secret"].as_str().unwrap(),
    );
    let receiver = Sandbox::start(&["--webhook-secret-file", secret_file.to_str().unwrap()]);
    let v: Value = http
        .post(format!(
            "{}/v1/webhook_endpoints/{}",
            sb.stripe_api,
            placeholder["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .form(&[("url", format!("{}/api/webhooks/stripe", receiver.app))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "enabled");
    let broken = Sandbox::start(&["--fault", "webhook-500"]);
    let failing = create(format!("{}/api/webhooks/stripe", broken.app)).await;
    let refused = create(format!("{}/hook", closed_url())).await;

    let (_, event_id) = paid_topup(&app, 1000).await;
    let event = eventually("every attempt", Duration::from_secs(20), || async {
        let (_, e) = stripe_get(&sb, &attempts_path(&event_id)).await;
        (e["delivery_attempts"].as_array()?.len() == 1 + 1 + 3 + 3).then_some(e)
    })
    .await;
    let attempts = event["delivery_attempts"].as_array().unwrap();
    let for_endpoint =
        |id: &Value| -> Vec<&Value> { attempts.iter().filter(|a| a["endpoint"] == *id).collect() };
    let received = for_endpoint(&placeholder["id"]);
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0]["status"], 200,
        "signed with the endpoint's own secret"
    );
    let failed = for_endpoint(&failing["id"]);
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|a| a["status"] == 500));
    assert_eq!(
        failed
            .iter()
            .map(|a| a["attempt"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let unreachable = for_endpoint(&refused["id"]);
    assert_eq!(unreachable.len(), 3);
    assert!(
        unreachable
            .iter()
            .all(|a| a["status"].is_null() && a["error"].is_string())
    );
    assert_eq!(event["pending_webhooks"], 2);

    // A disabled endpoint gets nothing.
    let id = failing["id"].as_str().unwrap();
    http.post(format!("{}/v1/webhook_endpoints/{id}", sb.stripe_api))
        .bearer_auth(&key)
        .form(&[("disabled", "true")])
        .send()
        .await
        .unwrap();
    let (_, second) = paid_topup(&app, 500).await;
    let event = eventually(
        "the second event's attempts",
        Duration::from_secs(20),
        || async {
            let (_, e) = stripe_get(&sb, &attempts_path(&second)).await;
            (e["delivery_attempts"].as_array()?.len() == 1 + 1 + 3).then_some(e)
        },
    )
    .await;
    assert!(
        event["delivery_attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["endpoint"] != failing["id"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_keeps_the_account_and_webhook_endpoints_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let args = ["--state", state.to_str().unwrap()];
    let http = reqwest::Client::new();
    let (account, kept, disabled) = {
        let sb = Sandbox::start(&args);
        let key = stripe_key(&sb);
        let url = format!("{}/v1/webhook_endpoints", sb.stripe_api);
        let create = |hook: &'static str| {
            http.post(&url).bearer_auth(&key).form(&[
                ("url", hook),
                ("enabled_events[]", "invoice.paid"),
                ("metadata[team]", "payments"),
            ])
        };
        let app = App::new(&sb.stripe_api);
        let (_, kept) = app.send(create("https://a.example.com/hook")).await;
        let (_, disabled) = app.send(create("https://b.example.com/hook")).await;
        let (_, deleted) = app.send(create("https://c.example.com/hook")).await;
        let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
        let (status, _) = app
            .send(
                http.post(format!("{url}/{}", id(&disabled)))
                    .bearer_auth(&key)
                    .form(&[("disabled", "true")]),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = app
            .send(
                http.delete(format!("{url}/{}", id(&deleted)))
                    .bearer_auth(&key),
            )
            .await;
        assert_eq!(status, 200);
        let (_, account) = stripe_get(&sb, "/v1/account").await;
        (id(&account), id(&kept), id(&disabled))
        // Dropped here: SIGKILL, no chance to flush on the way out.
    };

    let sb = Sandbox::start(&args);
    let (_, v) = stripe_get(&sb, "/v1/account").await;
    assert_eq!(v["id"], account.as_str());
    let (_, list) = stripe_get(&sb, "/v1/webhook_endpoints?limit=100").await;
    let all = list["data"].as_array().unwrap();
    let find = |id: &str| all.iter().find(|e| e["id"] == id).cloned();
    let kept = find(&kept).expect("the endpoint survived");
    assert_eq!(kept["url"], "https://a.example.com/hook");
    assert_eq!(kept["status"], "enabled");
    assert_eq!(kept["metadata"]["team"], "payments");
    assert_eq!(kept["enabled_events"], serde_json::json!(["invoice.paid"]));
    assert_eq!(find(&disabled).unwrap()["status"], "disabled");
    assert_eq!(all.len(), 3, "the deleted one stays deleted: {list}");
    let app_endpoints: Vec<&Value> = all
        .iter()
        .filter(|e| e["description"] == "stripe-ops sandbox app")
        .collect();
    assert_eq!(
        app_endpoints.len(),
        1,
        "the app's own endpoint, once: {list}"
    );
    assert_eq!(
        app_endpoints[0]["url"],
        format!("{}/api/webhooks/stripe", sb.app).as_str(),
        "for the app's current address"
    );
}

/// Verifies each delivery with stripe-python's `Webhook.construct_event` and the secret of the
/// endpoint it came for (`SECRETS_FILE`: path → secret, read at each request), and records the
/// event's `api_version` by path; GET /seen answers what it recorded.
const VERSION_RECORDER: &str = r#"
import json, os, threading, stripe
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
seen = {}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        secrets = json.load(open(os.environ["SECRETS_FILE"]))
        try:
            event = stripe.Webhook.construct_event(
                payload, self.headers.get("Stripe-Signature"), secrets[self.path])
        except Exception as e:
            return self.answer(400, {"error": str(e)})
        with lock:
            seen.setdefault(self.path, []).append(event["api_version"])
        self.answer(200, {"received": True})
    def do_GET(self):
        with lock:
            self.answer(200, seen)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_pinned_to_an_api_version_gets_events_in_that_version() {
    // The account's default version is `--api-version`'s: unpinned endpoints get it.
    let sb = Sandbox::start(&["--api-version", "2025-03-31.basil"]);
    let app = App::new(&sb.app);
    let dir = tempfile::tempdir().unwrap();
    let secrets_file = dir.path().join("secrets.json");
    std::fs::write(&secrets_file, "{}").unwrap();
    let mut cmd = python();
    cmd.arg("-c")
        .arg(VERSION_RECORDER)
        .env("SECRETS_FILE", &secrets_file);
    let (_recorder, port) = spawn_announcing(cmd);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut secrets = serde_json::Map::new();
    for (path, version) in [("/pinned", Some("2024-06-20")), ("/account", None)] {
        let url = format!("{base}{path}");
        let mut form = vec![
            ("url", url.as_str()),
            ("enabled_events[0]", "checkout.session.completed"),
        ];
        form.extend(version.map(|v| ("api_version", v)));
        let created = create_endpoint(&sb.stripe_api, &stripe_key(&sb), &form).await;
        secrets.insert(path.into(), created["secret"].clone());
    }
    std::fs::write(&secrets_file, Value::Object(secrets).to_string()).unwrap();

    let (_, event_id) = paid_topup(&app, 1000).await;
    let (_, listed) = stripe_get(&sb, &format!("/v1/events/{event_id}")).await;
    let account_version = listed["api_version"].as_str().unwrap().to_owned();
    assert_eq!(account_version, "2025-03-31.basil");
    let seen = eventually(
        "both endpoints' deliveries",
        Duration::from_secs(20),
        || {
            let http = http.clone();
            let url = format!("{base}/seen");
            async move {
                let seen: Value = http.get(url).send().await.ok()?.json().await.ok()?;
                (seen["/pinned"].is_array() && seen["/account"].is_array()).then_some(seen)
            }
        },
    )
    .await;
    assert_eq!(seen["/pinned"], json!(["2024-06-20"]), "{seen}");
    assert_eq!(seen["/account"], json!([account_version]), "{seen}");
    // The event as listed keeps the version it was created with.
    let (_, again) = stripe_get(&sb, &format!("/v1/events/{event_id}")).await;
    assert_eq!(again["api_version"], account_version.as_str());
}
