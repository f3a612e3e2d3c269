//! Shared test harness: the binary, secrets on disk, and the real servers the tests start on
//! free loopback ports and stop when dropped (the sandbox, moto_server, chromedriver).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A webhook secret whose appearance in any output is a leak.
pub const CANARY_WHSEC: &str = "whsec_CANARYcanary0123456789abcdefABCDEF";
pub const CANARY_SK: &str = "sk_test_CANARYcanary0123456789abcdefABCDEF";

/// The binary under test; `STRIPE_OPS_UNDER_TEST` names another build of it (an older one, to
/// show a test failing before a fix).
pub fn bin_path() -> String {
    std::env::var("STRIPE_OPS_UNDER_TEST")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_stripe-ops").to_owned())
}

pub fn bin() -> Command {
    let mut cmd = Command::new(bin_path());
    cmd.env_remove("STRIPE_WEBHOOK_SECRET")
        .env_remove("STRIPE_OPS_CONFIG")
        .env_remove("STRIPE_API_BASE")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("STRIPE_API_KEY")
        .env_remove("BASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// Runs the binary with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout as the one JSON document `--json` promises.
#[track_caller]
pub fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(o)))
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Asserts an exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_code(o: &Output, expected: i32) {
    assert_eq!(
        code(o),
        expected,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Asserts that none of `secrets` appears in either stream.
#[track_caller]
pub fn assert_no_leak(o: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !stdout(o).contains(s),
            "secret leaked to stdout:\n{}",
            stdout(o)
        );
        assert!(
            !stderr(o).contains(s),
            "secret leaked to stderr:\n{}",
            stderr(o)
        );
    }
}

pub fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A URL nobody listens on. Port 1 is never handed out for a port-0 bind, so unlike a port that
/// was free a moment ago, no server started meanwhile (another test's, or the program's own
/// listener) can take it.
pub fn closed_url() -> String {
    "http://127.0.0.1:1".to_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The target triple this machine builds for (the binary's, as `--version` names it).
pub fn host_target() -> String {
    let o = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn required_env(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the suite with tests/run.sh, which installs {what} and sets it"
        )
    })
}

/// The test venv's Python, with `stripe` and `moto` installed.
pub fn python() -> Command {
    Command::new(required_env("STRIPE_OPS_TEST_PYTHON", "the Python venv"))
}

/// Runs a Python snippet in the test venv; returns (exit code, stdout, stderr).
pub fn run_python(code: &str, envs: &[(&str, &str)]) -> (i32, String, String) {
    let o = python()
        .arg("-c")
        .arg(code)
        .envs(envs.iter().copied())
        .output()
        .expect("python runs");
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

/// Stopped as its supervisor would: SIGTERM, a moment to clean up (the sandbox removes its
/// folder of generated secrets), then SIGKILL.
impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` with stdout piped and returns it with the first line it prints (trimmed): how
/// every server started by the tests announces its port or URL.
pub fn spawn_announcing(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("the process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line.trim().to_owned())
}

/// A Python HTTP server from the test venv that prints its port; returns it and its base URL.
pub fn python_receiver(code: &str, secret: &str) -> (Proc, String) {
    let mut cmd = python();
    cmd.arg("-c").arg(code).env("SECRET", secret);
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

/// A `stripe-ops sandbox` process on a free port.
pub struct Sandbox {
    pub app: String,
    pub stripe_api: String,
    /// The whole start line (`webhook_secret_file`, `stripe_key_file`, ...).
    pub info: Value,
    pub proc: Proc,
}

impl Sandbox {
    /// Starts `stripe-ops --json sandbox --listen 127.0.0.1:0 <args>` and waits for its
    /// `{"app", "stripe_api"}` line.
    pub fn start(args: &[&str]) -> Sandbox {
        Self::start_with(bin(), args)
    }

    pub fn start_with(mut cmd: Command, args: &[&str]) -> Sandbox {
        let mut child = cmd
            .args(["--json", "sandbox", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sandbox starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let proc = Proc(child);
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("sandbox start line {line:?} is not JSON: {e}"));
        Sandbox {
            app: v["app"].as_str().expect("app").to_owned(),
            stripe_api: v["stripe_api"].as_str().expect("stripe_api").to_owned(),
            info: v,
            proc,
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

/// `moto_server` on a free loopback port.
pub struct Moto {
    pub url: String,
    pub proc: Proc,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with_env(&[])
    }

    /// `envs` for example `[("MOTO_ECS_SERVICE_RUNNING", "1")]`. moto_server binds a port the
    /// system chooses (`-p 0`) and says which on stderr (` * Running on http://…`): a port
    /// picked beforehand could be taken by another test's server before moto binds it.
    pub fn start_with_env(envs: &[(&str, &str)]) -> Moto {
        Self::start_with(envs, &[])
    }

    /// Over https with `cert` and `key` (`self_signed_certificate`).
    pub fn start_tls(cert: &Path, key: &Path) -> Moto {
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        Self::start_with(&[], &["--ssl-cert", cert, "--ssl-key", key])
    }

    fn start_with(envs: &[(&str, &str)], args: &[&str]) -> Moto {
        let exe = required_env("STRIPE_OPS_MOTO_SERVER", "moto[server]");
        let mut cmd = Command::new(exe);
        cmd.args(["-H", "127.0.0.1", "-p", "0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null());
        let (proc, url) = spawn_announced_on_stderr(cmd, "Running on ");
        Moto { url, proc }
    }

    /// Environment for the tool (and boto3) to talk to this moto with dummy credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// `chromedriver` on a free loopback port. The port is picked before chromedriver binds it, so
/// another test's server may take it first: chromedriver then exits, and is started again on
/// another port.
pub struct ChromeDriver {
    pub url: String,
    pub proc: Proc,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        let exe = required_env("STRIPE_OPS_CHROMEDRIVER", "chromium-driver");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&exe)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            let mut proc = Proc(child);
            let listening = poll("chromedriver to answer", Duration::from_secs(30), || {
                if !matches!(proc.0.try_wait(), Ok(None)) {
                    return Some(false);
                }
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .ok()
                    .map(|_| true)
            });
            // Connected, and still running: the port is chromedriver's, not another server's.
            if listening && matches!(proc.0.try_wait(), Ok(None)) {
                let url = format!("http://127.0.0.1:{port}");
                return ChromeDriver { url, proc };
            }
        }
        panic!("chromedriver exited five times before it listened");
    }
}

/// Spawns `cmd` and reads its stderr until a line holds `marker`; returns the process and the
/// word after the marker. The rest of stderr is drained in the background, so that a server that
/// logs there never blocks on a full pipe.
pub fn spawn_announced_on_stderr(mut cmd: Command, marker: &str) -> (Proc, String) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let proc = Proc(child);
    let mut seen = String::new();
    let word = loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("the server's stderr");
        assert!(
            read > 0,
            "the server exited before it announced {marker:?}; it said:\n{seen}"
        );
        seen.push_str(&line);
        if let Some((_, rest)) = line.split_once(marker) {
            break rest
                .split(|c: char| c.is_whitespace() || c == '\x1b')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    (proc, word)
}

/// A self-signed certificate for 127.0.0.1 (and its key), made by openssl: (cert.pem, key.pem).
pub fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // A leaf, not a CA: webpki refuses a CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", stderr(&made));
    (cert, key)
}
