//! The relay as a process: usage errors exit 2, a busy port or a spool in use by another relay
//! exit 3; SIGHUP reloads the targets from the config file and re-reads the verify secret (a bad
//! file keeps the current ones, loudly); SIGTERM finishes the delivery in flight, Ctrl-C exits
//! 130.

use super::*;

#[test]
fn usage_errors_exit_2_and_a_busy_port_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spool = d.join("spool");
    let spool = spool.to_str().unwrap();
    let whsec = secret_file(d, "whsec", SECRET_B);
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-secret-file",
                &format!("a={whsec}"),
            ],
            "incoming events must be verified",
        ),
        (&["--spool", spool], "no targets"),
        (&["--target", "nameless"], "NAME=VALUE"),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target",
                "a=http://y",
            ],
            "defined twice",
        ),
        (
            &["--spool", spool, "--target", "a=ftp://x"],
            "http or https",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-secret-file",
                "a=/nonexistent",
            ],
            "cannot read target a webhook secret file",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-events",
                "zz=invoice.*",
            ],
            "--target-events names zz, which is not a --target",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-match",
                "a=data..x=1",
            ],
            "is not a dotted path",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-match",
                "a=nopath",
            ],
            "NAME=PATH=VALUE",
        ),
    ];
    for (args, message) in cases {
        let o = run(&[&["fanout", "--listen", "127.0.0.1:0"], args].concat());
        assert_code(&o, 2);
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(&[
        "fanout",
        "--listen",
        &addr,
        "--spool",
        spool,
        "--target",
        "a=http://127.0.0.1:9/",
    ]);
    assert_code(&o, 3);
    assert!(stderr(&o).contains("cannot listen on"), "{}", stderr(&o));

    let _running = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool,
            "--target",
            "a=http://127.0.0.1:9/",
        ],
    );
    let o = run(&[
        "fanout",
        "--listen",
        "127.0.0.1:0",
        "--spool",
        spool,
        "--target",
        "a=http://127.0.0.1:9/",
    ]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("in use by another fanout process"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sighup_reloads_targets_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let b_secret = secret_file(d, "b", SECRET_B);
    let spool = d.join("spool");
    let entry = |name: &str, url: &str, extra: &str| {
        format!("[[fanout.target]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
    };
    let config_a = format!(
        "[fanout]\nlisten = \"127.0.0.1:0\"\nspool = \"{}\"\n{}",
        spool.display(),
        entry("a", &a.url, "")
    );
    let config = write_file(d, "stripe-ops.toml", &config_a);
    let incoming = secret_file(d, "incoming", INCOMING);
    let mut cmd = bin();
    cmd.env("STRIPE_OPS_CONFIG", &config);
    let relay = Fanout::start_with(cmd, d, &["--verify-secret-file", &incoming]);
    let names = |relay: &Fanout| -> Vec<String> {
        relay.status()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&relay), ["a"]);
    let (first, body, header) = signed("customer.created", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);

    let with_b = format!(
        "{config_a}{}",
        entry("b", &b.url, &format!("secret_file = \"{b_secret}\""))
    );
    write_file(d, "stripe-ops.toml", &with_b);
    relay.signal("HUP");
    poll("b to be added", WAIT, || {
        (names(&relay) == ["a", "b"]).then_some(())
    });
    let (second, body, header) = signed("customer.created", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    b.wait_for(std::slice::from_ref(&second));
    assert_eq!(
        b.ids(),
        vec![second.clone()],
        "a new target gets events from now on"
    );
    assert_eq!(b.received()[0]["valid"], true);
    a.wait_for(&[first, second]);
    poll("the reload to be logged", WAIT, || {
        relay.log().contains("reloaded: added [b]").then_some(())
    });

    write_file(d, "stripe-ops.toml", "[fanout\nbroken");
    relay.signal("HUP");
    poll("the failed reload to be logged", WAIT, || {
        relay
            .log()
            .contains("reload FAILED, keeping the current targets")
            .then_some(())
    });
    assert_eq!(names(&relay), ["a", "b"]);

    write_file(
        d,
        "stripe-ops.toml",
        &format!(
            "[fanout]\n{}",
            entry("b", &b.url, &format!("secret_file = \"{b_secret}\""))
        ),
    );
    relay.signal("HUP");
    poll("a to be removed", WAIT, || {
        (names(&relay) == ["b"]).then_some(())
    });
    assert!(!spool.join("cursors").join("a").exists());
    assert!(spool.join("cursors").join("b").exists());
}

#[test]
fn sigterm_finishes_the_delivery_in_flight_and_ctrl_c_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = Recorder::start_with(d, "slow", None, 0, &[("DELAY", "1.5")]);
    let spool = d.join("spool");
    let mut relay = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--target",
            &target("slow", &slow),
            "--summary-wait",
            "50ms",
        ],
    );
    let (id, body, header) = signed("charge.refunded", INCOMING, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["targets"][0]["pending"], true, "{answer}");
    poll("the slow target to start receiving", WAIT, || {
        std::fs::read_to_string(&slow.out)
            .unwrap_or_default()
            .contains("started")
            .then_some(())
    });
    relay.signal("TERM");
    assert_eq!(relay.wait_exit(), 0, "{}", relay.log());
    assert_eq!(slow.ids(), vec![id], "the delivery in flight was finished");
    assert_eq!(
        std::fs::read_dir(spool.join("events")).unwrap().count(),
        0,
        "and recorded as done"
    );
    assert!(relay.log().contains("stopped"));

    let mut relay = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--target",
            &target("slow", &slow),
        ],
    );
    assert_eq!(relay.start["recovered"], 0);
    relay.signal("INT");
    assert_eq!(relay.wait_exit(), 130);
}

#[test]
fn sighup_rereads_the_verify_secret_file_and_a_bad_one_keeps_the_old_secret_loudly() {
    const NEW: &str = "whsec_fanoutNEWnewNEWnew0123456789abcdefgh";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            "a=http://127.0.0.1:1/",
            "--verify-secret-file",
            &incoming,
        ],
    );
    let answer = |secret: &str| {
        let (_, body, header) = signed("customer.created", secret, &[]);
        post(&relay.webhook, &body, &header).unwrap().0
    };
    assert_eq!(answer(INCOMING), 200);
    std::fs::write(&incoming, NEW).unwrap();
    relay.signal("HUP");
    poll("the reload", WAIT, || {
        relay
            .log()
            .contains("reloaded: 1 verify secret(s) re-read")
            .then_some(())
    });
    assert_eq!(answer(NEW), 200, "the new secret is checked");
    assert_eq!(answer(INCOMING), 401, "the old one no longer");
    // Empty, deleted, junk: each reload fails, says why, and the current secret stays.
    for (i, bad) in [
        Some(""),
        None,
        Some("not a secret at all"),
        Some("sk_test_abc"),
    ]
    .into_iter()
    .enumerate()
    {
        match bad {
            Some(text) => std::fs::write(&incoming, text).unwrap(),
            None => std::fs::remove_file(&incoming).unwrap(),
        }
        relay.signal("HUP");
        poll("the failed reload", WAIT, || {
            let failed = relay
                .log()
                .matches("reload FAILED, keeping the current verify secrets")
                .count();
            (failed == i + 1).then_some(())
        });
        assert_eq!(answer(NEW), 200, "{bad:?}: the current secret stays");
    }
    let log = relay.log_when("both refused reloads", |log| {
        log.contains("is empty") && log.contains("does not hold a whsec_ secret")
    });
    assert!(log.contains("is empty"), "{log}");
    assert!(log.contains("does not hold a whsec_ secret"), "{log}");
    assert!(
        !log.contains(NEW) && !log.contains(INCOMING),
        "no secret in the log"
    );
}
