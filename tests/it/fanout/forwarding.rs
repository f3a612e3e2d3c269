//! What each target receives: every event, checked against the incoming secret on the way in
//! (401 and nothing forwarded when it does not verify), passed through unchanged or re-signed with
//! the target's own secret, with its configured headers; events of another API version than
//! `--api-version` forwarded and counted; a self-signed HTTPS target refused unless `--insecure`.

use super::*;

#[test]
fn an_event_reaches_every_target_and_resigned_targets_verify_with_their_own_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let b_secret = secret_file(d, "b", SECRET_B);
    let c_secret = secret_file(d, "c", CANARY_WHSEC);
    let a = Recorder::start(d, "a", Some(INCOMING));
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let c = Recorder::start(d, "c", Some(CANARY_WHSEC));
    let config = write_file(
        d,
        "stripe-ops.toml",
        &format!(
            "[fanout]\n[[fanout.target]]\nname = \"c\"\nurl = \"{}\"\nsecret_file = \"{c_secret}\"\nheaders = {{ X-Team = \"blue\" }}\n",
            c.url
        ),
    );
    let spool = d.join("spool");
    let mut cmd = bin();
    cmd.env("STRIPE_OPS_CONFIG", &config);
    let relay = Fanout::start_with(
        cmd,
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--verify-secret-file",
            &incoming,
            "--target",
            &target("a", &a),
            "--target",
            &target("b", &b),
            "--target-secret-file",
            &format!("b={b_secret}"),
        ],
    );
    assert_eq!(relay.start["targets"][0]["resigned"], false);
    assert_eq!(relay.start["targets"][1]["resigned"], true);
    assert_eq!(relay.start["targets"][2]["name"], "c");
    assert_eq!(get_json(&format!("{}/health", relay.url))["ok"], true);

    let (id, body, header) = signed("invoice.paid", INCOMING, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["received"], true);
    assert_eq!(answer["event_id"], id.as_str());
    let results = answer["targets"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    for t in results {
        assert_eq!(t["ok"], true, "{answer}");
        assert_eq!(t["status"], 200);
        assert!(t["ms"].as_f64().unwrap() >= 0.0);
    }

    let ids = vec![id.clone()];
    let at_a = a.wait_for(&ids);
    let at_b = b.wait_for(&ids);
    let at_c = c.wait_for(&ids);
    for got in [&at_a, &at_b, &at_c] {
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["valid"], true, "{got:?}");
        assert_eq!(got[0]["content_type"], "application/json; charset=utf-8");
    }
    // passed through unchanged to a; re-signed (fresh signature, own secret) for b and c
    assert_eq!(at_a[0]["sig"], header.as_str());
    assert_ne!(at_b[0]["sig"], header.as_str());
    assert_ne!(at_c[0]["sig"], at_b[0]["sig"]);
    assert_eq!(at_c[0]["team"], "blue");
    assert_eq!(at_a[0]["team"], Value::Null);

    relay.wait_spool_empty();
    wait_no_segments(&spool);
    let status = relay.status();
    for t in status["targets"].as_array().unwrap() {
        assert_eq!(t["delivered"], 1, "{status}");
        assert_eq!(t["pending"], 0);
        assert_eq!(t["failing_since"], Value::Null);
        assert_eq!(t["last_error"], Value::Null);
    }
    assert_eq!(status["received"], 1);
    let log = relay.log_when("the three deliveries", |log| {
        ["a", "b", "c"]
            .iter()
            .all(|n| log.contains(&format!("target {n} {id} #1: delivered")))
    });
    assert!(log.contains(&format!("event {id} #1: received")), "{log}");
    for name in ["a", "b", "c"] {
        assert!(
            log.contains(&format!("target {name} {id} #1: delivered, 200")),
            "{log}"
        );
    }
    assert!(!log.contains(CANARY_WHSEC) && !log.contains(INCOMING) && !log.contains(SECRET_B));
}

#[test]
fn a_bad_incoming_signature_is_401_and_forwards_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let a = Recorder::start(d, "a", None);
    let relay = Fanout::start_local(
        d,
        &[
            "--verify-secret-file",
            &incoming,
            "--target",
            &target("a", &a),
        ],
    );
    let (bad_id, body, header) = signed("charge.succeeded", SECRET_B, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 401);
    assert_eq!(answer["received"], false);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no signature matched"),
        "{answer}"
    );
    let (_, old_body, _) = signed("charge.succeeded", INCOMING, &[]);
    let stale = format!(
        "t=1000,v1={}",
        Signer::new(INCOMING.as_bytes()).sign_hex(1000, old_body.as_bytes())
    );
    let (status, answer) = post(&relay.webhook, &old_body, &stale).unwrap();
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("tolerance"),
        "{answer}"
    );
    let (status, _) = post(&relay.webhook, &body, "").unwrap();
    assert_eq!(status, 401);
    // An id from the network cannot forge a log line or move the terminal's cursor.
    let forged =
        r#"{"id": "evt_x\n2026-01-01T00:00:00Z target a evt_forged #9: delivered\u001b[2K"}"#;
    let (status, _) = post(&relay.webhook, forged, "t=1,v1=00").unwrap();
    assert_eq!(status, 401);

    // a good event afterwards arrives alone: the rejected ones were never forwarded or spooled
    let (good_id, body, header) = signed("charge.succeeded", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    a.wait_for(std::slice::from_ref(&good_id));
    assert_eq!(a.ids(), vec![good_id]);
    let status = relay.status();
    assert_eq!(status["rejected"], 4);
    let log = relay.log_when("the rejections", |log| {
        log.contains(&format!("event {bad_id} REJECTED: no signature matched"))
            && log.contains(r"evt_x\n2026-01-01T00:00:00Z")
    });
    assert!(
        !log.contains('\u{1b}'),
        "a terminal escape reached the log:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line:\n{log}"
    );
    assert!(log.contains(r"evt_x\n2026-01-01T00:00:00Z"), "{log}");
    assert_eq!(status["received"], 1);
    assert_eq!(status["spool"]["last_seq"], 1);
    assert!(
        relay
            .log()
            .contains(&format!("event {bad_id} REJECTED: no signature matched"))
    );
}

#[test]
fn events_of_another_api_version_than_the_targets_expect_are_forwarded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("a", &a),
            "--api-version",
            "2025-03-31.basil",
        ],
    );
    let (same, body, header) = render_signed(
        "invoice.paid",
        INCOMING,
        RenderOptions {
            api_version: Some("2025-03-31.basil".into()),
            ..Default::default()
        },
    );
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    let (other, body, header) = signed("invoice.paid", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    let (thin, body, header) = signed("v1.invoice.paid", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    a.wait_for(&[same.clone(), other.clone(), thin.clone()]);
    let status = relay.status();
    assert_eq!(
        status["api_version"],
        serde_json::json!({"expected": "2025-03-31.basil", "other": 1}),
        "{status}"
    );
    let log = relay.log_saying(&format!("event {other} names API version"));
    assert!(
        log.contains(&format!(
            "event {other} names API version 2026-11-18.endive, not 2025-03-31.basil (--api-version): forwarded unchanged"
        )),
        "{log}"
    );
    assert!(!log.contains(&format!("event {same} names")), "{log}");
}

#[test]
fn a_self_signed_target_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = self_signed_certificate(d);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let tls = Recorder::start_with(d, "tls", None, 0, &[("TLS_CERT", cert), ("TLS_KEY", key)]);
    let url = tls.url.replace("http://", "https://");
    for (insecure, expect_ok) in [(false, false), (true, true)] {
        let spool = d.join(format!("spool-{insecure}"));
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".into(),
            "--spool".into(),
            spool.display().to_string(),
            "--target".into(),
            format!("tls={url}"),
        ];
        if insecure {
            args.push("--insecure".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let relay = Fanout::start(d, &args);
        let (id, body, header) = signed("charge.succeeded", INCOMING, &[]);
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["targets"][0]["ok"], expect_ok, "{answer}");
        if expect_ok {
            tls.wait_for(&[id]);
            relay.log_saying("TLS certificates of targets are not checked");
        } else {
            let error = answer["targets"][0]["error"]
                .as_str()
                .unwrap()
                .to_lowercase();
            assert!(error.contains("certificate"), "{error}");
            assert!(!tls.ids().contains(&id));
        }
    }
}
