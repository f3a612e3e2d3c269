//! Bad input, by class: every duration, rate and count out of range, every URL that is not one,
//! inputs that are not regular files, an empty `AWS_ENDPOINT_URL`: each a clean exit 2 (or 3 for
//! an outside system) with one clear line, never a panic, a hang or a secret.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::*;

/// One line of error, no panic, no backtrace.
#[track_caller]
fn assert_clean_failure(what: &str, o: &Output, expected: i32) {
    let err = stderr(o);
    assert_eq!(code(o), expected, "{what}: exit code\n{err}");
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace", "hit a bug"] {
        assert!(!err.contains(bad), "{what}: {bad} in stderr:\n{err}");
    }
    assert!(err.contains("error"), "{what}: no error line:\n{err}");
}

/// Runs `args` with `value` appended; `--json` too, which must still give `{"ok": false}`.
fn run_with(args: &[&str], value: &str) -> (Output, Output) {
    let mut all = args.to_vec();
    all.push(value);
    let plain = run(&all);
    all.insert(0, "--json");
    (plain, run(&all))
}

#[test]
fn every_duration_rate_and_count_flag_refuses_out_of_range_values() {
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let whsec = whsec.to_str().unwrap();
    let dead = format!("{}/hook", closed_url());
    let send = [
        "events",
        "send",
        "invoice.paid",
        "--secret-file",
        whsec,
        "--to",
        &dead,
    ];
    let load = [&send[..], &["--count", "5"]].concat();
    let smoke = ["smoke", "--base-url", &dead, "--webhook-secret-file", whsec];
    let check = ["check", "--webhook-url", &dead, "--secret-file", whsec];
    let verify = [
        "events",
        "verify",
        "--secret-file",
        whsec,
        "--header",
        "t=1,v1=00",
        "--body-file",
        whsec,
    ];
    let enable = ["enable", "--env", "staging", "--aws-endpoint-url", &dead];
    let rotate = [
        "webhook",
        "rotate",
        "--env",
        "staging",
        "--aws-endpoint-url",
        &dead,
    ];
    let fanout = [
        "fanout",
        "--listen",
        "127.0.0.1:0",
        "--target",
        "a=http://127.0.0.1:1/",
    ];
    let sandbox = ["sandbox", "--listen", "127.0.0.1:0"];
    // (command, flag, whether zero is refused too)
    let flags: Vec<(&[&str], &str, bool)> = vec![
        (&send, "--timeout", true),
        (&load, "--duration", true),
        (&load, "--rate", true),
        (&send, "--count", true),
        (&load, "--concurrency", true),
        (&verify, "--tolerance", false),
        (&smoke, "--settle-timeout", true),
        (&smoke, "--request-timeout", true),
        (&smoke, "--wait", true),
        (&smoke, "--topup-cents", true),
        (&check, "--timeout", true),
        (&check, "--tolerance", true),
        (&check, "--settle-timeout", true),
        (&check, "--amount", true),
        (&enable, "--wait-timeout", true),
        (&rotate, "--wait-timeout", true),
        (&fanout, "--max-age", true),
        (&fanout, "--retry-base", true),
        (&fanout, "--retry-max", true),
        (&fanout, "--timeout", true),
        (&fanout, "--summary-wait", false),
        (&fanout, "--tolerance", false),
        (&fanout, "--in-flight", true),
        (&fanout, "--idle-timeout", true),
        (&sandbox, "--idle-timeout", true),
        (&sandbox, "--tolerance", false),
        (&sandbox, "--aws-poll", true),
        (&sandbox, "--delivery-backoff", false),
        (&sandbox, "--delivery-attempts", true),
    ];
    let values = [
        "-1",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "1e300",
        "1e-300",
        "1e20",
        "99999999999999999999",
        "3381903080180084463m",
        "soon",
        "",
    ];
    let mut tried = 0;
    for (cmd, flag, zero_refused) in &flags {
        let mut bad: Vec<&str> = values.to_vec();
        if *zero_refused {
            bad.extend(["0", "0s"]);
        }
        for value in bad {
            // Values that are tiny but positive are fine for durations and are tried as rates.
            if value == "1e-300" && !["--rate", "--count", "--concurrency"].contains(flag) {
                continue;
            }
            let args = [&cmd[..], &[*flag]].concat();
            let (plain, json) = run_with(&args, value);
            let what = format!("{} {flag} {value:?}", cmd[0]);
            assert_clean_failure(&what, &plain, 2);
            assert_eq!(code(&json), 2, "{what} --json");
            assert_eq!(json_of(&json)["ok"], false, "{what} --json");
            tried += 2;
        }
    }
    eprintln!("{tried} out-of-range values refused with exit 2");
}

#[test]
fn a_url_that_is_not_one_is_an_input_error_wherever_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let whsec = whsec.to_str().unwrap();
    let places: Vec<Vec<&str>> = vec![
        vec![
            "events",
            "send",
            "invoice.paid",
            "--secret-file",
            whsec,
            "--to",
        ],
        vec![
            "events",
            "send",
            "invoice.paid",
            "--secret-file",
            whsec,
            "--count",
            "2",
            "--to",
        ],
        vec!["smoke", "--webhook-secret-file", whsec, "--base-url"],
        vec!["check", "--secret-file", whsec, "--base-url"],
        vec!["check", "--secret-file", whsec, "--webhook-url"],
        vec!["status", "--env", "staging", "--stripe-api-base"],
        vec!["status", "--env", "staging", "--aws-endpoint-url"],
        vec!["status", "--env", "staging", "--base-url"],
        vec!["enable", "--env", "staging", "--base-url"],
        vec!["webhook", "rotate", "--env", "staging", "--public-base-url"],
        vec![
            "sandbox",
            "--secrets-from-aws",
            "--env",
            "staging",
            "--aws-endpoint-url",
        ],
    ];
    for place in &places {
        for url in [
            "not a url",
            "",
            "ftp://example.com/hook",
            "http://127.0.0.1:99999/",
            "localhost:8080",
        ] {
            let mut args = place.clone();
            args.push(url);
            let o = run(&args);
            let what = format!("{} = {url:?}", args[..args.len() - 1].join(" "));
            assert_clean_failure(&what, &o, 2);
            // The AWS SDK's request dump never reaches the user.
            assert!(
                !stderr(&o).contains("dispatch failure"),
                "{what}: {}",
                stderr(&o)
            );
        }
    }
    // From the environment and the config file too, naming where the value came from.
    let o = bin()
        .args(["smoke", "--webhook-secret-file", whsec])
        .env("BASE_URL", "not a url")
        .output()
        .unwrap();
    assert_clean_failure("BASE_URL", &o, 2);
    let cfg = write_file(
        dir.path(),
        "c.toml",
        "[env.staging]\nbase_url = \"staging.example.com\"\n",
    );
    let o = run(&[
        "--config",
        cfg.to_str().unwrap(),
        "status",
        "--env",
        "staging",
    ]);
    assert_clean_failure("base_url in the config", &o, 2);
    assert!(stderr(&o).contains("base_url (file)"), "{}", stderr(&o));
    let o = bin()
        .args(["status", "--env", "staging"])
        .env("STRIPE_API_BASE", "ftp://x")
        .output()
        .unwrap();
    assert_clean_failure("STRIPE_API_BASE", &o, 2);
    assert!(stderr(&o).contains("STRIPE_API_BASE"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn inputs_that_are_not_regular_files_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let whsec = whsec.to_str().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::os::unix::fs::symlink("/dev/zero", templates.join("invoice.paid.json")).unwrap();
    let templates = templates.to_str().unwrap();
    for input in [fifo, "/dev/zero"] {
        let runs: Vec<Vec<&str>> = vec![
            vec!["events", "sign", "invoice.paid", "--secret-file", input],
            vec![
                "events",
                "verify",
                "--secret-file",
                whsec,
                "--header-file",
                input,
                "--body-file",
                whsec,
            ],
            vec![
                "events",
                "verify",
                "--secret-file",
                whsec,
                "--header",
                "t=1,v1=00",
                "--body-file",
                input,
            ],
            vec!["smoke", "--verify-only", "--receipt", input],
            vec!["--config", input, "config", "show"],
            vec!["sandbox", "--webhook-secret-file", input],
            vec![
                "smoke",
                "--base-url",
                "http://127.0.0.1:1",
                "--webhook-secret-file",
                input,
            ],
        ];
        for args in runs {
            let started = Instant::now();
            let o = run(&args);
            let what = args.join(" ");
            assert_clean_failure(&what, &o, 2);
            assert!(
                stderr(&o).contains("not a regular file"),
                "{what}: {}",
                stderr(&o)
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what} took long"
            );
        }
    }
    let o = run(&[
        "events",
        "sign",
        "invoice.paid",
        "--secret-file",
        whsec,
        "--fixtures-dir",
        templates,
    ]);
    assert_clean_failure("a template that is /dev/zero", &o, 2);
}

#[test]
fn an_empty_aws_endpoint_url_means_unset() {
    // The endpoint comes from the shared config file instead (a dead loopback port), as it would
    // for anyone whose CI template leaves AWS_ENDPOINT_URL= empty.
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "aws-config",
        &format!(
            "[default]\nregion = us-east-1\nendpoint_url = {}\n",
            closed_url()
        ),
    );
    for command in [
        vec!["status", "--env", "staging"],
        vec!["webhook", "rotate", "--env", "staging"],
        vec![
            "enable",
            "--env",
            "staging",
            "--skip-put-secrets",
            "--skip-smoke",
        ],
    ] {
        let o = bin()
            .args(&command)
            .env("AWS_ENDPOINT_URL", "")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap();
        let what = format!("AWS_ENDPOINT_URL= {}", command.join(" "));
        assert_clean_failure(&what, &o, 3);
        assert!(
            stderr(&o).contains("127.0.0.1:1") || stderr(&o).contains("Connection refused"),
            "{what}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn check_against_a_receiver_nobody_answers_for_is_an_outside_failure() {
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let dead = format!("{}/hook", closed_url());
    for extra in [vec![], vec!["--base-url", "http://127.0.0.1:1"]] {
        let mut args = vec![
            "check",
            "--webhook-url",
            &dead,
            "--secret-file",
            whsec.to_str().unwrap(),
        ];
        args.extend(extra.iter());
        let o = run(&args);
        assert_clean_failure(&args.join(" "), &o, 3);
        assert!(
            stderr(&o).contains("no case got an answer"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn usage_errors_in_json_mode_are_a_json_document_too() {
    for args in [
        vec!["--json", "no-such-command"],
        vec!["--json", "events", "send"],
        vec!["events", "sign", "--json", "nope", "--bogus"],
    ] {
        let o = run(&args);
        assert_code(&o, 2);
        let v = json_of(&o);
        assert_eq!(v["ok"], false, "{args:?}");
        assert_eq!(v["exit_code"], 2);
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

#[test]
fn a_sandbox_keeps_its_generated_secrets_in_a_private_folder_it_removes() {
    let sb = Sandbox::start(&[]);
    let file = std::path::PathBuf::from(sb.info["webhook_secret_file"].as_str().unwrap());
    let folder = file.parent().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", folder.display());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    drop(sb); // SIGTERM: a clean stop
    poll(
        "the sandbox's folder to go",
        Duration::from_secs(10),
        || (!folder.exists()).then_some(()),
    );
}

/// Reads from `stream` until the server closes it (`true`), or 10 s pass without a byte
/// (`false`).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// `--idle-timeout` reaches both servers: a connection that never sends a request, and a
/// keep-alive connection idle after its answer, are closed once it passes (with the default,
/// 75 s, neither would be within the test's 10 s).
#[test]
fn servers_close_idle_connections_after_the_idle_timeout() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(&["--idle-timeout", "300ms"]);
    let spool = dir.path().join("spool");
    let (_fanout, start) = spawn_announcing({
        let mut cmd = bin();
        cmd.args(["--json", "fanout", "--listen", "127.0.0.1:0", "--spool"])
            .arg(&spool)
            .args([
                "--target",
                "a=http://127.0.0.1:1/",
                "--idle-timeout",
                "300ms",
            ]);
        cmd
    });
    let fanout: serde_json::Value = serde_json::from_str(&start).unwrap();
    for base in [sandbox.app.as_str(), fanout["listen"].as_str().unwrap()] {
        let addr = base.trim_start_matches("http://");
        let mut silent = std::net::TcpStream::connect(addr).unwrap();
        assert!(
            closed_by_server(&mut silent),
            "{base}: a silent client stays connected"
        );
        let mut kept = std::net::TcpStream::connect(addr).unwrap();
        kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert!(
            closed_by_server(&mut kept),
            "{base}: an idle keep-alive connection stays open"
        );
    }
}
