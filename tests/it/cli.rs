//! The command line itself: version, completions, config, exit codes.

use serde_json::Value;

use crate::common::*;

/// `--version` names the version, the commit (git's, in a checkout) and the target, for bug
/// reports; `-V` the version alone.
#[test]
fn version_and_help() {
    let o = run(&["--version"]);
    assert_code(&o, 0);
    let printed = stdout(&o);
    let rest = printed
        .strip_prefix(&format!(
            "stripe-ops {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{printed}"));
    let (commit, rest) = rest.split_once(", ").unwrap();
    assert_eq!(rest, format!("target {})\n", host_target()));
    let root = env!("CARGO_MANIFEST_DIR");
    if std::path::Path::new(root).join(".git").exists() {
        // HEAD, or an ancestor of it when a commit landed while the tests ran: a commit of this
        // checkout either way, never "unknown".
        let known = std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", commit, "HEAD"])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(known.success(), "{commit} is not HEAD nor before it");
    }
    let o = run(&["-V"]);
    assert_eq!(
        stdout(&o),
        format!("stripe-ops {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = run(&["--help"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("Exit codes"));
}

#[test]
fn usage_errors_exit_2() {
    assert_code(&run(&["no-such-command"]), 2);
    assert_code(&run(&["events", "sign"]), 2);
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_code(&o, 0);
        assert!(stdout(&o).contains("stripe-ops"), "{shell}");
    }
}

#[test]
fn config_show_explains_where_values_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "stripe-ops.toml",
        "app = \"shop\"\n[env.staging]\nbase_url = \"https://staging.example.com\"\n",
    );
    let o = bin()
        .args([
            "--json",
            "--config",
            cfg.to_str().unwrap(),
            "config",
            "show",
            "--env",
            "staging",
            "--region",
            "eu-west-1",
        ])
        .env("STRIPE_API_BASE", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    let find = |k: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(find("cluster")["value"], "shop-staging-cluster");
    assert_eq!(find("cluster")["source"]["kind"], "default");
    assert_eq!(find("base_url")["source"]["kind"], "file");
    assert_eq!(find("region")["value"], "eu-west-1");
    assert_eq!(find("region")["source"]["kind"], "flag");
    assert_eq!(find("stripe_api_base")["source"]["kind"], "environment");

    let o = bin()
        .args(["config", "show", "--env", "prod"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("shop-prod-api"),
        "./stripe-ops.toml is read: {}",
        stdout(&o)
    );

    let o = bin()
        .args(["config", "show"])
        .env("STRIPE_OPS_CONFIG", cfg.to_str().unwrap())
        .output()
        .unwrap();
    assert!(stdout(&o).contains("shop-staging"));
}

/// The one order, for the region: `--region`, `AWS_REGION`, the file, the default; and
/// `AWS_DEFAULT_REGION` is not read (by any command: `fanout --from-sqs` read it before).
#[test]
fn the_region_is_the_flag_then_aws_region_then_the_file_then_us_east_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "stripe-ops.toml",
        "[env.staging]\nregion = \"ap-south-1\"\n[env.qa]\n",
    );
    let region = |env: &str, args: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = bin();
        cmd.env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let o = cmd
            .args(["--json", "--config", cfg.to_str().unwrap()])
            .args(["config", "show", "--env", env])
            .args(args)
            .output()
            .unwrap();
        assert_code(&o, 0);
        let v = json_of(&o);
        let region = v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "region")
            .unwrap()
            .clone();
        (
            region["value"].as_str().unwrap().to_owned(),
            region["source"].to_string(),
        )
    };
    let both = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-north-1"),
    ];
    let flag = region("staging", &["--region", "us-west-2"], &both);
    assert_eq!(flag.0, "us-west-2", "{flag:?}");
    let var = region("staging", &[], &both);
    assert_eq!(
        var,
        (
            "eu-west-1".to_owned(),
            r#"{"kind":"environment","name":"AWS_REGION"}"#.to_owned()
        )
    );
    let default_var_only = [("AWS_DEFAULT_REGION", "eu-north-1")];
    assert_eq!(
        region("staging", &[], &default_var_only).0,
        "ap-south-1",
        "the file, not AWS_DEFAULT_REGION"
    );
    let default = region("qa", &[], &default_var_only);
    assert_eq!(default.0, "us-east-1", "{default:?}");
    assert!(default.1.contains("default"), "{default:?}");
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "bad.toml", "[env.staging]\nclustr = \"x\"\n");
    let o = run(&["--config", cfg.to_str().unwrap(), "config", "show"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("clustr"), "{}", stderr(&o));
    let o = run(&["--config", "/nonexistent/stripe-ops.toml", "config", "show"]);
    assert_code(&o, 2);
    let o = run(&[
        "--json",
        "--config",
        cfg.to_str().unwrap(),
        "config",
        "show",
    ]);
    let v: Value = json_of(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
}

/// The process refuses transparent huge pages, which mimalloc asks for on its arenas
/// (`src/main.rs`): a fresh 2 MiB page zeroed in one fault was 8.6 % of `fanout --from-sqs`'s
/// CPU. The kernel reports it in `/proc/PID/status` (Linux 5.0 and later).
#[cfg(target_os = "linux")]
#[test]
fn the_process_runs_without_transparent_huge_pages() {
    let sandbox = Sandbox::start(&[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", sandbox.pid())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    assert_eq!(
        thp.map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["THP_enabled:", "0"]),
        "{status}"
    );
}
