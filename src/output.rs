//! How the tool talks: results on stdout (one JSON document with `--json`), status and warnings
//! on stderr, progress only on a TTY. Everything printed passes through `secret::scrub`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::secret::scrub;

#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub json: bool,
    pub quiet: bool,
    pub progress: bool,
    pub color: bool,
}

static MODE: OnceLock<Mode> = OnceLock::new();
static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

pub fn init(json: bool, quiet: bool, no_progress: bool) {
    let stderr_tty = std::io::stderr().is_terminal();
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let mode = Mode {
        json,
        quiet,
        progress: !no_progress && !quiet && stderr_tty && !in_ci,
        color: stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let _ = MODE.set(mode);
}

pub fn mode() -> Mode {
    *MODE.get_or_init(|| Mode {
        json: false,
        quiet: false,
        progress: false,
        color: false,
    })
}

/// True when the process may ask a person a question: stdin is a TTY and `CI` is not set.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::env::var_os("CI").is_none_or(|v| v.is_empty())
}

/// A human result line on stdout; silent in `--json` mode (stdout then holds only the document).
pub fn line(text: impl AsRef<str>) {
    if !mode().json {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", scrub(text.as_ref()));
    }
}

/// A status line for people on stderr; silent with `--quiet`.
pub fn status(text: impl AsRef<str>) {
    if !mode().quiet {
        eprintln!("{}", scrub(text.as_ref()));
    }
}

pub fn warn(text: impl AsRef<str>) {
    eprintln!("{} {}", paint("warning:", "33"), scrub(text.as_ref()));
}

pub fn error(text: impl AsRef<str>) {
    eprintln!("{} {}", paint("error:", "31"), scrub(text.as_ref()));
}

/// Prints the command's JSON document on stdout.
pub fn json(value: &serde_json::Value) {
    JSON_PRINTED.store(true, Ordering::Relaxed);
    let text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", scrub(&text));
}

/// Whether the command already printed its JSON document (errors then add no second one).
pub fn json_printed() -> bool {
    JSON_PRINTED.load(Ordering::Relaxed)
}

/// `text` in an ANSI colour when colour is on (`code` "31" red, "32" green, "33" yellow).
pub fn paint(text: &str, code: &str) -> String {
    if mode().color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

pub fn ok_mark(ok: bool) -> String {
    if ok {
        paint("ok", "32")
    } else {
        paint("FAIL", "31")
    }
}

/// A spinner on stderr, hidden unless progress is on.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    if !mode().progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    bar.set_message(scrub(&message.into()).into_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A bar of `len` steps on stderr, hidden unless progress is on.
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    if !mode().progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}

/// Prints the command's JSON document on one line of stdout (for servers whose first line is
/// read by a parent process before they finish).
pub fn json_line(value: &serde_json::Value) {
    JSON_PRINTED.store(true, Ordering::Relaxed);
    let text = serde_json::to_string(value).expect("JSON values always serialize");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", scrub(&text));
    let _ = out.flush();
}
