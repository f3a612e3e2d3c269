//! The process: start line, flags, in-process API, signals, and no secret in any output.

use super::*;

#[test]
fn start_line_names_urls_and_a_private_generated_secret_file() {
    let sb = Sandbox::start(&[]);
    assert!(sb.app.starts_with("http://127.0.0.1:"));
    assert!(sb.stripe_api.starts_with("http://127.0.0.1:"));
    assert_ne!(sb.app, sb.stripe_api);
    for key in ["webhook_secret_file", "stripe_key_file"] {
        let path = sb.info[key].as_str().unwrap();
        assert!(!readable_by_others(path), "{key} must be 0600");
    }
    assert!(secret_from_start_line(&sb).starts_with("whsec_"));
    let key_file = sb.info["stripe_key_file"].as_str().unwrap();
    assert!(
        std::fs::read_to_string(key_file)
            .unwrap()
            .starts_with("sk_test_")
    );
    let line = sb.info.to_string();
    assert!(
        !line.contains("whsec_") && !line.contains("sk_test_"),
        "{line}"
    );
}

#[test]
fn bad_flags_and_files_exit_2_without_leaking() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["sandbox", "--fault", "double-credits"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("double-credit"), "{}", stderr(&o));
    let o = run(&["sandbox", "--webhook-secret-file", "/nonexistent/secret"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("/nonexistent/secret"));
    let bad_key = write_file(dir.path(), "key", CANARY_WHSEC);
    let o = run(&["sandbox", "--stripe-key-file", bad_key.to_str().unwrap()]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("sk_test_/sk_live_"), "{}", stderr(&o));
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["--json", "sandbox", "--listen", &addr]);
    assert_code(&o, 2);
    let v: Value = json_of(&o);
    assert!(v["error"].as_str().unwrap().contains("cannot listen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_sandbox_serves_both_sides_and_shuts_down() {
    use stripe_ops::secret::ExposeSecret;
    let sb = stripe_ops::sandbox::start(stripe_ops::sandbox::SandboxOptions::default())
        .await
        .unwrap();
    let app = App::new(sb.app_url());
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, 200);
    let secret = sb.webhook_secret().unwrap();
    assert!(accepts_secret(&app, secret.expose_secret()).await);
    let account = app
        .http
        .get(format!("{}/v1/account", sb.stripe_api_url()))
        .bearer_auth(sb.stripe_key().expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    let url = sb.app_url().to_owned();
    sb.shutdown().await;
    let err = app
        .http
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[test]
fn human_start_line_then_ctrl_c_exits_130_and_removes_generated_secrets() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = bin()
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut proc = Proc(child);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{line:?}");
    assert_eq!((words[0], words[2]), ("app", "stripe_api"));
    let health = format!("{}/health", words[1]);
    poll("the app to answer", Duration::from_secs(10), || {
        std::net::TcpStream::connect(words[1].trim_start_matches("http://")).ok()
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = poll("the sandbox to stop", Duration::from_secs(10), || {
        proc.0.try_wait().unwrap()
    });
    assert_eq!(exit.code(), Some(130));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut proc.0.stderr.take().unwrap(), &mut err).unwrap();
    let secret_file = err
        .lines()
        .find_map(|l| l.strip_prefix("webhook secret in "))
        .expect("stderr names the generated secret file")
        .trim()
        .to_owned();
    assert!(!std::path::Path::new(&secret_file).exists());
    assert!(
        !err.contains("whsec_") && !err.contains("sk_test_"),
        "{err}"
    );
    assert!(
        std::net::TcpStream::connect(
            health
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
        )
        .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_secrets_never_reach_the_output_even_with_trace_logging() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let sk = write_file(dir.path(), "sk", CANARY_SK);
    let mut child = bin()
        .args(["-vvv", "--json", "sandbox", "--listen", "127.0.0.1:0"])
        .args(["--webhook-secret-file", whsec.to_str().unwrap()])
        .args(["--stripe-key-file", sk.to_str().unwrap()])
        .args(["--delivery-attempts", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let mut proc = Proc(child);
    let info: Value = serde_json::from_str(&line).unwrap();
    let app = App::new(info["app"].as_str().unwrap());
    let api = info["stripe_api"].as_str().unwrap();

    let (t, _) = paid_topup(&app, 700).await;
    assert_eq!(app.balance(&t.token).await, 700);
    let body = completed_event("evt_forged", &t);
    let (status, _) = app
        .webhook(&body, Some(&sign(SECRET_B, &body, unix_now())))
        .await;
    assert_eq!(status, 400);
    let wrong = app
        .http
        .get(format!("{api}/v1/account"))
        .bearer_auth("sk_test_wrongwrongwrong0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let created = create_endpoint(
        api,
        CANARY_SK,
        &[("url", "https://example.com/h"), ("enabled_events[]", "*")],
    )
    .await;
    let endpoint_secret = created["secret"].as_str().unwrap().to_owned();

    std::process::Command::new("kill")
        .args(["-TERM", &proc.0.id().to_string()])
        .status()
        .unwrap();
    let exit = poll("the sandbox to stop", Duration::from_secs(10), || {
        proc.0.try_wait().unwrap()
    });
    // SIGTERM is how a supervisor stops a server: a clean stop, not an error.
    assert_eq!(exit.code(), Some(0), "SIGTERM stops it gracefully, exit 0");
    let mut out = line.clone();
    stdout.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    proc.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !err.contains("error"),
        "a clean stop prints no error: {err}"
    );
    assert!(err.contains("sandbox stopped"), "{err}");
    for secret in [
        CANARY_WHSEC,
        CANARY_SK,
        endpoint_secret.as_str(),
        &t.token,
        "pw-secret-1",
    ] {
        assert!(!out.contains(secret), "leak to stdout: {out}");
        assert!(!err.contains(secret), "leak to stderr: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_shutdown_flushes_the_state_file() {
    use stripe_ops::secret::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let opts = stripe_ops::sandbox::SandboxOptions {
        state_file: Some(path.clone()),
        ..Default::default()
    };
    let sb = stripe_ops::sandbox::start(opts).await.unwrap();
    let app = App::new(sb.app_url());
    let secret = sb.webhook_secret().unwrap().expose_secret().to_owned();
    let t = app.topup(500).await;
    for id in ["evt_first_credit", "evt_late_duplicate"] {
        let body = completed_event(id, &t);
        let (status, _) = app
            .webhook(&body, Some(&sign(&secret, &body, unix_now())))
            .await;
        assert_eq!(status, 200);
    }
    tokio::time::timeout(Duration::from_secs(20), sb.shutdown())
        .await
        .expect("shutdown finishes");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("evt_late_duplicate"),
        "the last change is flushed"
    );
}
