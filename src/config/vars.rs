//! The catalogue of the environment variables stripe-ops reads: each one's name, what it means
//! and which commands read it (and, so that one table lists them all, those its installer and
//! its build read). It is the only way the product reads its environment (a test
//! keeps `std::env::var` out of every other file), clap's `env = …` attributes name these
//! constants, and docs/REFERENCE.md's table is [`markdown_table`] (a test compares them).

use std::ffi::OsString;

/// One environment variable the product reads.
#[derive(Debug, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub meaning: &'static str,
    /// The commands (or the part of the product) that read it.
    pub read_by: &'static str,
}

impl Var {
    /// The raw value, as the OS holds it.
    pub fn os(&self) -> Option<OsString> {
        std::env::var_os(self.name)
    }

    /// The value when it is set and Unicode.
    pub fn string(&self) -> Option<String> {
        std::env::var(self.name).ok()
    }

    /// The value as a setting reads it: set and not blank (CI templates often leave
    /// `NAME=`, which means unset).
    pub fn value(&self) -> Option<String> {
        self.string().filter(|v| !v.trim().is_empty())
    }

    /// Set to anything but the empty string.
    pub fn is_set(&self) -> bool {
        self.os().is_some_and(|v| !v.is_empty())
    }
}

macro_rules! catalogue {
    ($($id:ident = $name:literal: $meaning:literal, $read_by:literal;)*) => {
        $(pub const $id: Var = Var { name: $name, meaning: $meaning, read_by: $read_by };)*
        /// Every variable, in the order docs/REFERENCE.md lists them.
        pub const ALL: &[&Var] = &[$(&$id),*];
    };
}

catalogue! {
    STRIPE_OPS_CONFIG = "STRIPE_OPS_CONFIG":
        "the config file, when no `--config`", "every command";
    STRIPE_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET":
        "a webhook signing secret, when no `--secret-file`",
        "`events sign|send|verify|replay`, `check`";
    STRIPE_SECRET_KEY = "STRIPE_SECRET_KEY":
        "the Stripe secret key, when no `--stripe-secret-key-file`; wins over `STRIPE_API_KEY` when both are set",
        "`smoke --verify-stripe-event`, `check`, `events replay`, `eventbridge`";
    STRIPE_API_KEY = "STRIPE_API_KEY":
        "the Stripe secret key (the Stripe CLI's name), when neither the file nor `STRIPE_SECRET_KEY` gives one",
        "`smoke --verify-stripe-event`, `check`, `events replay`, `eventbridge`";
    STRIPE_API_BASE = "STRIPE_API_BASE":
        "Stripe's API base URL, when no `--stripe-api-base` (before the config's `stripe_api_base`)",
        "every command that calls Stripe";
    BASE_URL = "BASE_URL":
        "the app's base URL, when no `--base-url` (before the config's `base_url`)",
        "`smoke`, `check`, `config show`";
    SMOKE_STRIPE_WEBHOOK_SECRET = "SMOKE_STRIPE_WEBHOOK_SECRET":
        "the app's webhook secret, when no `--webhook-secret-file` (before `--env`'s Secrets Manager)",
        "`smoke`";
    SMOKE_BUYER_EMAIL = "SMOKE_BUYER_EMAIL":
        "the buyer to log in as, when no `--buyer-email` (else a fresh buyer per run)", "`smoke`";
    SMOKE_BUYER_PASSWORD = "SMOKE_BUYER_PASSWORD":
        "the buyer's password, when no `--buyer-password-file`", "`smoke`";
    AWS_REGION = "AWS_REGION":
        "the AWS region, when no `--region` (before the config's `region`, then `us-east-1`); `AWS_DEFAULT_REGION` is not read",
        "the commands that call AWS";
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL":
        "the AWS endpoint (a local emulator), when no `--aws-endpoint-url`",
        "`enable`, `webhook rotate`, `status`, `eventbridge`, `sandbox`, `--env` of `smoke` and `events replay`";
    AWS_PROFILE = "AWS_PROFILE":
        "the AWS profile, when no `--profile`; this and the rest of the SDK's chain (`AWS_ACCESS_KEY_ID`, …) are read by the AWS SDK itself. An `AWS_*` variable set to the empty string is removed first (empty means unset)",
        "the commands that call AWS";
    STRIPE_OPS_ECS_POLL = "STRIPE_OPS_ECS_POLL":
        "the first polling interval while waiting for an ECS rollout (a duration, default 2s)",
        "`enable`, `webhook rotate`";
    STRIPE_OPS_EVENTBRIDGE_POLL = "STRIPE_OPS_EVENTBRIDGE_POLL":
        "the polling interval of the wait for the partner event source (default 1s)",
        "`eventbridge setup`";
    STRIPE_OPS_EVENTBRIDGE_RULE_BUS = "STRIPE_OPS_EVENTBRIDGE_RULE_BUS":
        "emulators only: the bus the rules go on instead of the partner event bus (moto puts partner events on `default`; see [SQS.md](SQS.md))",
        "`eventbridge`";
    STRIPE_OPS_CHROMEDRIVER = "STRIPE_OPS_CHROMEDRIVER":
        "the WebDriver to start (else `chromedriver`, then `geckodriver`, on `PATH`)",
        "`smoke --automate`, `demo`";
    STRIPE_OPS_CHROMIUM = "STRIPE_OPS_CHROMIUM":
        "the browser chromedriver starts (else `chromium` on `PATH`, else chromedriver's choice)",
        "`smoke --automate`, `demo`";
    PATH = "PATH":
        "where `chromedriver`, `geckodriver`, `chromium` and `xdg-open` are looked for",
        "`smoke --automate|--open`, `demo`";
    BROWSER = "BROWSER":
        "the desktop browser that opens the checkout page (else `open` on macOS, `xdg-open` with a display)",
        "`smoke --open`";
    DISPLAY = "DISPLAY":
        "set: a desktop is there for `xdg-open`", "`smoke --open`";
    WAYLAND_DISPLAY = "WAYLAND_DISPLAY":
        "set: a desktop is there for `xdg-open`", "`smoke --open`";
    CI = "CI":
        "set and not empty: no progress bars, no prompts", "every command";
    GITHUB_ACTIONS = "GITHUB_ACTIONS":
        "`true`: the job summary and annotations (see \"CI\")",
        "`smoke`, `check`, `enable`, `webhook rotate`";
    GITHUB_STEP_SUMMARY = "GITHUB_STEP_SUMMARY":
        "the file the job summary is appended to", "`smoke`, `check`, `enable`, `webhook rotate`";
    NO_COLOR = "NO_COLOR":
        "set and not empty: no colour", "every command";
    RUST_LOG = "RUST_LOG":
        "the log filter (tracing), like `-v`", "every command";
    STRIPE_OPS_VERSION = "STRIPE_OPS_VERSION":
        "the release to install (`0.2.0` or `v0.2.0`; default the latest; see \"Installing\")",
        "`install.sh`, not the binary";
    STRIPE_OPS_INSTALL_DIR = "STRIPE_OPS_INSTALL_DIR":
        "where the binary goes (default `~/.local/bin`)", "`install.sh`, not the binary";
    STRIPE_OPS_INSTALL_BASE_URL = "STRIPE_OPS_INSTALL_BASE_URL":
        "a directory holding the archives instead of the release's downloads",
        "`install.sh`, not the binary";
    STRIPE_OPS_REPOSITORY = "STRIPE_OPS_REPOSITORY":
        "the GitHub repository whose releases are downloaded", "`install.sh`, not the binary";
    STRIPE_OPS_BUILD_COMMIT = "STRIPE_OPS_BUILD_COMMIT":
        "the commit `--version` names when the source has no `.git`",
        "the build (`build.rs`), not the binary";
}

/// Removes the `AWS_*` variables that are set but blank (CI templates often leave
/// `AWS_ENDPOINT_URL=`): empty means unset, and the AWS SDK would otherwise try to use the
/// empty endpoint and panic.
///
/// # Safety
/// Changes the process environment: call it before any other thread runs (the start of
/// `main`).
pub unsafe fn unset_blank_aws() {
    let blank: Vec<OsString> = std::env::vars_os()
        .filter(|(k, v)| {
            k.to_str().is_some_and(|k| k.starts_with("AWS_"))
                && v.to_string_lossy().trim().is_empty()
        })
        .map(|(k, _)| k)
        .collect();
    for k in blank {
        // SAFETY: the caller guarantees that no other thread reads the environment now.
        unsafe { std::env::remove_var(k) };
    }
}

/// The catalogue as docs/REFERENCE.md's table.
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | meaning | read by |\n| --- | --- | --- |\n");
    let cell = |s: &str| s.replace('|', "\\|");
    for v in ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            v.name,
            cell(v.meaning),
            cell(v.read_by)
        ));
    }
    out
}

/// Whether `name` is in the catalogue.
pub fn known(name: &str) -> bool {
    ALL.iter().any(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_lists_every_variable_as_the_catalogue_says() {
        let reference = include_str!("../../docs/REFERENCE.md");
        let section = reference
            .split_once("## Environment variables\n")
            .expect("REFERENCE.md has an environment variables section")
            .1;
        let table: String = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        let expected = markdown_table();
        assert!(
            table == expected,
            "docs/REFERENCE.md's \"Environment variables\" table is not the catalogue's; make it:\n{expected}"
        );
    }

    #[test]
    fn names_are_unique_and_are_their_constants() {
        let mut names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(known("AWS_REGION") && !known("AWS_DEFAULT_REGION"));
    }

    /// The one settings layer: no other file of the product reads the environment.
    #[test]
    fn only_the_settings_layer_reads_the_environment() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut readers = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.starts_with(src.join("config")) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let reads = ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("];
                if reads.iter().any(|r| text.contains(r)) {
                    readers.push(path.display().to_string());
                }
            }
        }
        assert!(
            readers.is_empty(),
            "read the environment through config::vars: {readers:?}"
        );
    }
}
