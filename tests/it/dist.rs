//! Getting stripe-ops into a CI job: the release archive scripts/release.sh builds here from the
//! test binary, install.sh downloading it from Python's http.server on 127.0.0.1, the GitHub
//! Action's script (scripts/action.sh) with the runner's files pointed at temporary ones, and
//! what `cargo package` ships.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The archives release.sh built, once per test run.
struct Dist {
    dir: PathBuf,
    target: String,
}

impl Dist {
    fn archive(&self) -> String {
        format!("stripe-ops-{VERSION}-{}.tar.gz", self.target)
    }
}

/// Runs scripts/release.sh on `bin`, writing into `dir`.
fn release(bin: &Path, dir: &Path) -> Output {
    Command::new(format!("{ROOT}/scripts/release.sh"))
        .env("STRIPE_OPS_BIN", bin)
        .env("DIST_DIR", dir)
        .env_remove("TARGET")
        .output()
        .expect("release.sh runs")
}

/// The test binary carries some 330 MB of debug information: release.sh packages a stripped
/// copy of it, as release builds are (`strip = true`). The folder lives in the suite's TMPDIR,
/// which tests/run.sh removes.
fn dist() -> &'static Dist {
    static DIST: OnceLock<Dist> = OnceLock::new();
    DIST.get_or_init(|| {
        let work = tempfile::tempdir().unwrap().keep();
        let bin = work.join("stripe-ops");
        std::fs::copy(env!("CARGO_BIN_EXE_stripe-ops"), &bin).unwrap();
        let stripped = Command::new("strip").arg(&bin).status();
        assert!(stripped.is_ok_and(|s| s.success()), "strip the test binary");
        let dir = work.join("dist");
        let o = release(&bin, &dir);
        assert_code(&o, 0);
        std::fs::remove_file(&bin).unwrap();
        let dist = Dist {
            dir,
            target: host_target(),
        };
        assert_eq!(
            stdout(&o).trim(),
            dist.dir.join(dist.archive()).to_str().unwrap()
        );
        dist
    })
}

/// A copy of the archives in a folder of its own, for a test to damage.
fn dist_copy(into: &Path) -> PathBuf {
    let copy = into.join("mirror");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&dist().dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    copy
}

const STATIC_SERVER: &str = r#"
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
handler = functools.partial(Quiet, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Python's http.server serving `dir` on a free loopback port: (process, base URL).
fn serve(dir: &Path) -> (Proc, String) {
    let mut cmd = python();
    cmd.arg("-c").arg(STATIC_SERVER).arg(dir);
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

/// `sh install.sh` with HOME in `home` and nothing inherited that would steer it.
fn install(home: &Path, envs: &[(&str, &str)]) -> Output {
    Command::new("sh")
        .arg(format!("{ROOT}/install.sh"))
        .env("HOME", home)
        .env_remove("STRIPE_OPS_VERSION")
        .env_remove("STRIPE_OPS_INSTALL_DIR")
        .env_remove("STRIPE_OPS_INSTALL_BASE_URL")
        .env_remove("STRIPE_OPS_REPOSITORY")
        .envs(envs.iter().copied())
        .output()
        .expect("sh runs install.sh")
}

#[test]
fn release_archive_holds_the_binary_docs_and_completions_with_a_checksum() {
    let dist = dist();
    let name = dist.archive();
    let stem = name.trim_end_matches(".tar.gz");
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(dist.dir.join(&name))
        .output()
        .unwrap();
    assert_code(&listed, 0);
    let mut files: Vec<String> = stdout(&listed)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(str::to_owned)
        .collect();
    files.sort();
    let expected: Vec<String> = [
        "LICENSE",
        "README.md",
        "completions/_stripe-ops",
        "completions/stripe-ops.bash",
        "completions/stripe-ops.fish",
        "stripe-ops",
    ]
    .iter()
    .map(|f| format!("{stem}/{f}"))
    .collect();
    assert_eq!(files, expected);

    // The checksum file is what `sha256sum -c` reads, and it checks out.
    let sum = std::fs::read_to_string(dist.dir.join(format!("{name}.sha256"))).unwrap();
    assert!(sum.ends_with(&format!("  {name}\n")), "{sum}");
    let checked = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(&dist.dir)
        .output()
        .unwrap();
    assert_code(&checked, 0);
    let latest = std::fs::read_to_string(dist.dir.join("stripe-ops-version.txt")).unwrap();
    assert_eq!(latest, format!("{VERSION}\n"));
}

#[test]
fn installer_installs_the_latest_then_a_rerun_downloads_nothing() {
    let home = tempfile::tempdir().unwrap();
    let (server, base) = serve(&dist().dir);
    // No version, no folder: the latest (stripe-ops-version.txt) into ~/.local/bin.
    let o = install(home.path(), &[("STRIPE_OPS_INSTALL_BASE_URL", &base)]);
    assert_code(&o, 0);
    let dest = home.path().join(".local/bin/stripe-ops");
    assert!(
        stderr(&o).contains(&format!(
            "installed stripe-ops {VERSION} ({}): {}",
            dist().target,
            dest.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("is not on PATH"), "{}", stderr(&o));
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["stripe-ops"], "nothing else left behind");

    let version = Command::new(&dest).arg("--version").output().unwrap();
    assert_code(&version, 0);
    assert!(
        stdout(&version).starts_with(&format!("stripe-ops {VERSION} (commit ")),
        "{}",
        stdout(&version)
    );
    assert!(stdout(&version).contains(&format!("target {})", dist().target)));

    // Again, with the server gone: a download would fail (exit 3), so nothing is fetched, and
    // the binary is the same file.
    drop(server);
    let o = install(
        home.path(),
        &[
            ("STRIPE_OPS_INSTALL_BASE_URL", &closed_url()),
            ("STRIPE_OPS_VERSION", &format!("v{VERSION}")),
        ],
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(&format!("stripe-ops {VERSION} is already installed")),
        "{}",
        stderr(&o)
    );
    let again = std::fs::metadata(&dest).unwrap();
    assert_eq!((again.ino(), again.mtime()), (meta.ino(), meta.mtime()));
}

#[test]
fn installer_prints_the_version_it_would_install() {
    let home = tempfile::tempdir().unwrap();
    let (_server, base) = serve(&dist().dir);
    let o = Command::new("sh")
        .arg(format!("{ROOT}/install.sh"))
        .arg("--print-version")
        .env("HOME", home.path())
        .env("STRIPE_OPS_INSTALL_BASE_URL", &base)
        .env_remove("STRIPE_OPS_VERSION")
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), format!("{VERSION}\n"));
    assert!(!home.path().join(".local").exists(), "nothing installed");
}

/// One way the download can be wrong, and what the installer must say about it.
struct Damage {
    what: &'static str,
    damage: fn(&Path, &str),
    code: i32,
    says: &'static str,
}

#[test]
fn installer_refuses_a_damaged_download_and_installs_nothing() {
    let cases = [
        Damage {
            what: "one byte of the archive changed",
            damage: |dir, name| {
                let path = dir.join(name);
                let mut bytes = std::fs::read(&path).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                std::fs::write(path, bytes).unwrap();
            },
            code: 1,
            says: "checksum mismatch for stripe-ops-",
        },
        Damage {
            what: "a checksum file without a checksum",
            damage: |dir, name| {
                std::fs::write(dir.join(format!("{name}.sha256")), "<html>moved</html>\n").unwrap()
            },
            code: 1,
            says: ".tar.gz.sha256 does not hold a SHA-256: nothing installed",
        },
        Damage {
            what: "a matching checksum of something that is not an archive",
            damage: |dir, name| {
                std::fs::write(dir.join(name), "not a tarball").unwrap();
                rewrite_checksum(dir, name);
            },
            code: 1,
            says: ".tar.gz is not a readable archive",
        },
        Damage {
            what: "an archive holding another version",
            damage: |dir, name| {
                let script = dir.join("fake-stripe-ops");
                std::fs::write(&script, "#!/bin/sh\necho 'stripe-ops 0.0.9'\n").unwrap();
                std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
                assert_code(&release(&script, dir), 0);
                assert!(dir.join(name).exists());
            },
            code: 1,
            says: "holds 'stripe-ops 0.0.9', expected stripe-ops",
        },
        Damage {
            what: "no archive for this version",
            damage: |dir, name| std::fs::remove_file(dir.join(name)).unwrap(),
            code: 3,
            says: "download failed: http://127.0.0.1:",
        },
    ];
    for case in cases {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = dist_copy(tmp.path());
        (case.damage)(&mirror, &dist().archive());
        let (_server, base) = serve(&mirror);
        let dir = tmp.path().join("bin");
        let o = install(
            tmp.path(),
            &[
                ("STRIPE_OPS_INSTALL_BASE_URL", &base),
                ("STRIPE_OPS_INSTALL_DIR", dir.to_str().unwrap()),
            ],
        );
        assert_eq!(code(&o), case.code, "{}: {}", case.what, stderr(&o));
        assert!(
            stderr(&o).contains(case.says),
            "{}: {}",
            case.what,
            stderr(&o)
        );
        let installed = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert_eq!(
            installed, 0,
            "{}: nothing installed, nothing left",
            case.what
        );
    }
}

fn rewrite_checksum(dir: &Path, name: &str) {
    let o = Command::new("sha256sum")
        .arg(name)
        .current_dir(dir)
        .output()
        .unwrap();
    std::fs::write(dir.join(format!("{name}.sha256")), o.stdout).unwrap();
}

#[test]
fn installer_refuses_bad_input_before_downloading() {
    let home = tempfile::tempdir().unwrap();
    let file = write_file(home.path(), "a-file", "");
    let under_a_file = file.join("bin");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("STRIPE_OPS_VERSION", "../../etc")],
            "not a version: '../../etc'",
        ),
        (
            &[("STRIPE_OPS_INSTALL_DIR", under_a_file.to_str().unwrap())],
            "cannot write to",
        ),
        (
            &[("HOME", "")],
            "neither STRIPE_OPS_INSTALL_DIR nor HOME is set",
        ),
    ];
    // Served archives, so that only the input can be what is refused.
    let (_server, base) = serve(&dist().dir);
    for (envs, says) in cases {
        let mut envs = envs.to_vec();
        envs.push(("STRIPE_OPS_INSTALL_BASE_URL", &base));
        let o = install(home.path(), &envs);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(says), "{envs:?}: {}", stderr(&o));
    }
}

/// Other platforms' `uname`, first on PATH: the installer must name the platform and refuse
/// (exit 2) before any download.
#[test]
fn installer_refuses_an_unknown_platform() {
    for (os, arch) in [
        ("FreeBSD", "amd64"),
        ("Linux", "riscv64"),
        ("MINGW64_NT-10.0", "x86_64"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let shim = tmp.path().join("uname");
        std::fs::write(
            &shim,
            format!("#!/bin/sh\ncase $1 in -s) echo {os} ;; -m) echo {arch} ;; esac\n"),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            tmp.path().display(),
            std::env::var("PATH").unwrap()
        );
        let o = install(
            tmp.path(),
            &[
                ("PATH", &path),
                ("STRIPE_OPS_INSTALL_BASE_URL", &closed_url()),
            ],
        );
        assert_code(&o, 2);
        assert!(
            stderr(&o).contains(&format!("no stripe-ops release for {os} {arch}")),
            "{}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("cargo install --locked stripe-ops"));
    }
}

/// The runner's files and folders for one job, in a temporary folder.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        for f in ["output", "path", "env"] {
            write_file(dir.path(), f, "");
        }
        for d in ["tool-cache", "temp", "workspace"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        Runner { dir }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// scripts/action.sh as action.yml runs it, with `inputs` (INPUT_…) and `envs`.
    fn run(&self, action_path: &Path, inputs: &[(&str, &str)], envs: &[(&str, &str)]) -> Output {
        let p = self.dir.path();
        let mut cmd = Command::new("bash");
        cmd.arg(action_path.join("scripts/action.sh"))
            .current_dir(p.join("workspace"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", p)
            .env("NO_COLOR", "1")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", action_path)
            .env("GITHUB_OUTPUT", p.join("output"))
            .env("GITHUB_PATH", p.join("path"))
            .env("GITHUB_ENV", p.join("env"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TOOL_CACHE", p.join("tool-cache"))
            .env("RUNNER_TEMP", p.join("temp"));
        for (k, v) in inputs {
            cmd.env(format!("INPUT_{k}"), v);
        }
        cmd.envs(envs.iter().copied()).output().unwrap()
    }

    /// GITHUB_OUTPUT read as the runner reads it: `name=value` and `name<<DELIMITER` blocks.
    fn outputs(&self) -> Vec<(String, String)> {
        let text = self.file("output");
        let mut lines = text.lines();
        let mut outputs = Vec::new();
        while let Some(line) = lines.next() {
            if let Some((name, delimiter)) = line.split_once("<<") {
                let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
                outputs.push((name.to_owned(), value.join("\n")));
            } else if let Some((name, value)) = line.split_once('=') {
                outputs.push((name.to_owned(), value.to_owned()));
            }
        }
        outputs
    }

    fn output(&self, name: &str) -> Option<String> {
        self.outputs()
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

#[test]
fn action_installs_into_the_tool_cache_runs_and_sets_outputs() {
    let runner = Runner::new();
    let (server, base) = serve(&dist().dir);
    let o = runner.run(
        Path::new(ROOT),
        &[("ARGS", "events list\n  'invoice.*' \"customer.*\"")],
        &[("STRIPE_OPS_INSTALL_BASE_URL", &base)],
    );
    assert_code(&o, 0);
    let cached = runner
        .dir
        .path()
        .join(format!("tool-cache/stripe-ops/{VERSION}/x64"));
    assert!(cached.join("stripe-ops").is_file());
    assert!(cached.with_extension("complete").is_file());
    assert_eq!(runner.file("path"), format!("{}\n", cached.display()));
    assert_eq!(runner.output("version").as_deref(), Some(VERSION));
    assert_eq!(runner.output("exit-code").as_deref(), Some("0"));
    let doc: Value = serde_json::from_str(&runner.output("json").unwrap()).unwrap();
    let types = doc["types"].as_array().unwrap();
    for t in ["invoice.paid", "customer.created"] {
        assert!(types.iter().any(|x| x == t), "{t}: {doc}");
    }
    assert!(stdout(&o).contains("\"invoice.paid\""), "the log shows it");
    assert_eq!(
        runner.file("env"),
        "",
        "nothing for later steps' environment"
    );

    // A later job on the same runner, with the download server gone: the tool cache has it.
    // Its version comes from the action's tag, read off the folder the runner checked the
    // action out into.
    drop(server);
    let checkout = runner.dir.path().join("_actions/acme/stripe-ops");
    std::fs::create_dir_all(&checkout).unwrap();
    let tagged = checkout.join(format!("v{VERSION}"));
    std::os::unix::fs::symlink(ROOT, &tagged).unwrap();
    let o = runner.run(
        &tagged,
        &[("ARGS", "--version")],
        &[("STRIPE_OPS_INSTALL_BASE_URL", &closed_url())],
    );
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("stripe-ops {VERSION} from the tool cache")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn action_masks_secret_inputs_and_hands_them_only_to_stripe_ops() {
    let runner = Runner::new();
    let (_server, base) = serve(&dist().dir);
    // version-file as asdf and mise write it.
    write_file(
        &runner.dir.path().join("workspace"),
        ".tool-versions",
        &format!("# tools\nnodejs 20.11.0\nstripe-ops {VERSION}\n"),
    );
    let o = runner.run(
        Path::new(ROOT),
        &[
            ("VERSION_FILE", ".tool-versions"),
            ("ARGS", "events sign customer.created"),
            ("WEBHOOK_SECRET", CANARY_WHSEC),
            ("STRIPE_SECRET_KEY", CANARY_SK),
        ],
        &[("STRIPE_OPS_INSTALL_BASE_URL", &base)],
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let mut lines = out.lines();
    let masks: Vec<&str> = lines.by_ref().take(2).collect();
    assert_eq!(
        masks,
        [
            format!("::add-mask::{CANARY_SK}"),
            format!("::add-mask::{CANARY_WHSEC}")
        ],
        "masked before anything else is printed"
    );
    let rest: String = lines.collect::<Vec<_>>().join("\n");
    for secret in [CANARY_WHSEC, CANARY_SK] {
        assert!(!rest.contains(secret), "{rest}");
        assert!(!stderr(&o).contains(secret), "{}", stderr(&o));
        for file in ["output", "path", "env"] {
            assert!(!runner.file(file).contains(secret), "{file}");
        }
    }
    // STRIPE_WEBHOOK_SECRET reached `events sign`: it signed.
    let doc: Value = serde_json::from_str(&runner.output("json").unwrap()).unwrap();
    assert!(
        doc["header"].as_str().is_some_and(|s| s.contains(",v1=")),
        "{doc}"
    );
    assert_eq!(runner.output("version").as_deref(), Some(VERSION));
}

#[test]
fn action_fails_the_step_with_stripe_ops_exit_code_and_document() {
    let runner = Runner::new();
    let (_server, base) = serve(&dist().dir);
    let o = runner.run(
        Path::new(ROOT),
        &[
            ("VERSION", VERSION),
            ("ARGS", "--json events list no.such.*"),
        ],
        &[("STRIPE_OPS_INSTALL_BASE_URL", &base)],
    );
    let exit = code(&o);
    assert_ne!(exit, 0, "{}", stdout(&o));
    assert_eq!(runner.output("exit-code"), Some(exit.to_string()));
    let doc: Value = serde_json::from_str(&runner.output("json").unwrap()).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["exit_code"], exit);

    // Unbalanced quotes in args: a usage error of the action itself, before any install.
    let runner = Runner::new();
    let o = runner.run(
        Path::new(ROOT),
        &[
            ("VERSION", VERSION),
            ("ARGS", "smoke --base-url 'https://x"),
        ],
        &[("STRIPE_OPS_INSTALL_BASE_URL", &base)],
    );
    assert_code(&o, 2);
    assert!(
        stdout(&o).contains("::error title=stripe-ops action::args: unbalanced quotes"),
        "{}",
        stdout(&o)
    );

    let o = runner.run(
        Path::new(ROOT),
        &[("ARGS", "--version")],
        &[("RUNNER_OS", "Windows")],
    );
    assert_code(&o, 2);
    assert!(stdout(&o).contains("not Windows"), "{}", stdout(&o));
}

/// What `cargo install --locked stripe-ops` builds from: the sources, build.rs and the event
/// catalogue and API data it embeds, the lock file, README and LICENSE; nothing of the tests or the tooling.
#[test]
fn cargo_package_ships_what_the_build_needs() {
    let o = Command::new(env!("CARGO"))
        .args([
            "package",
            "--locked",
            "--no-verify",
            "--list",
            "--allow-dirty",
        ])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let listed: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "LICENSE",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
    ] {
        assert!(listed.iter().any(|l| l == needed), "{needed} not packaged");
    }
    for dir in ["fixtures/snapshot", "fixtures/thin", "fixtures/api"] {
        let mut count = 0;
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                let path = format!("{dir}/{name}");
                assert!(listed.contains(&path), "{path} not packaged");
                count += 1;
            }
        }
        assert!(count > 10, "{dir}: {count} files");
    }
    let shipped_elsewhere = [
        "tests/",
        "benches/",
        "scripts/",
        "examples/",
        ".github/",
        "install.sh",
    ];
    for l in &listed {
        assert!(
            !shipped_elsewhere.iter().any(|p| l.starts_with(p)),
            "{l} packaged"
        );
    }
}

/// No GitLab runs here to lint the GitLab example, so its structure is checked as GitLab reads
/// it: every job in a declared stage, its `extends` and `needs` naming jobs that exist, a
/// manual job that blocks (allow_failure: false), and the receipt kept one day at most.
#[test]
fn gitlab_example_refers_only_to_what_exists() {
    let check = r#"
import os, sys, yaml
doc = yaml.safe_load(open(os.environ["FILE"]))
stages = doc["stages"]
jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and k not in ("variables", "default")}
problems = []
for name, job in jobs.items():
    if name.startswith("."):
        continue
    if job.get("stage") not in stages:
        problems.append(f"{name}: stage {job.get('stage')!r} is not in stages")
    if job.get("extends") and job["extends"] not in jobs:
        problems.append(f"{name}: extends {job['extends']}, which does not exist")
    for need in job.get("needs", []):
        need = need["job"] if isinstance(need, dict) else need
        if need not in jobs:
            problems.append(f"{name}: needs {need}, which does not exist")
    if job.get("when") == "manual" and job.get("allow_failure") is not False:
        problems.append(f"{name}: a manual job that does not block the pipeline")
    if "artifacts" in job and job["artifacts"].get("expire_in") != "1 day":
        problems.append(f"{name}: artifacts kept longer than a day")
print("\n".join(problems))
sys.exit(1 if problems else 0)
"#;
    let file = format!("{ROOT}/examples/gitlab/checkout-smoke.gitlab-ci.yml");
    let (code, out, err) = run_python(check, &[("FILE", &file)]);
    assert_eq!(code, 0, "{out}{err}");
}
