//! The one printer: results on stdout (one JSON document with `--json`), status and warnings on
//! stderr, progress only on a TTY, colour unless `NO_COLOR`. Every byte it writes passes through
//! `secret::scrub`, and so do the log lines (`log_writer`) and panic messages (`install_panic_hook`).
//!
//! The printer is a value, not a global: commands make one from the global flags and pass it to
//! the core, and library callers (demo, benches, tests) make a quiet one with `Printer::silent`.
//! What a command hands back is a `Report`; `cli.rs` is the one place that prints it.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::config::vars;
use crate::error::Result;
use crate::secret::scrub;

/// What a command hands back to `cli.rs`: its JSON document, its lines for people, and its
/// verdict (the error, with its exit code, when it did not pass).
pub trait Report {
    /// The `--json` document; `Value::Null` when the command already printed it (servers print
    /// theirs at start).
    fn json(&self) -> Value;
    /// Result lines for people, printed on stdout after the command's own progress.
    fn human(&self, out: &Printer) -> Vec<String>;
    fn verdict(&self) -> Result<()> {
        Ok(())
    }
    /// Its steps or cases for CI (`ci::publish`): the commands that run in pipelines give one.
    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        None
    }
}

/// A report that prints nothing more and passed.
pub struct Done;

impl Report for Done {
    fn json(&self) -> Value {
        Value::Null
    }
    fn human(&self, _: &Printer) -> Vec<String> {
        Vec::new()
    }
}

/// How the printer behaves, from the global flags and the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    pub json: bool,
    pub quiet: bool,
    pub progress: bool,
    pub color: bool,
}

impl Mode {
    /// From the flags and the environment: progress only on a TTY outside CI, colour only on a
    /// TTY without `NO_COLOR`.
    pub fn detect(json: bool, quiet: bool, no_progress: bool) -> Mode {
        let stderr_tty = std::io::stderr().is_terminal();
        Mode {
            json,
            quiet,
            progress: !no_progress && !quiet && stderr_tty && !in_ci(),
            color: stderr_tty && !vars::NO_COLOR.is_set(),
        }
    }
}

fn in_ci() -> bool {
    vars::CI.is_set()
}

struct Inner {
    mode: Mode,
    /// False for library callers: nothing reaches stdout or stderr.
    enabled: bool,
    json_printed: AtomicBool,
}

#[derive(Clone)]
pub struct Printer(Arc<Inner>);

/// One line on stderr. A stderr that cannot be written (a log file on a full disk, a closed
/// pipe) loses the line: `eprintln!` would panic, and a server must not die of its log.
fn to_stderr(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("mode", &self.0.mode)
            .finish()
    }
}

impl Default for Printer {
    fn default() -> Self {
        Printer::silent()
    }
}

impl Printer {
    pub fn new(mode: Mode) -> Printer {
        Printer(Arc::new(Inner {
            mode,
            enabled: true,
            json_printed: AtomicBool::new(false),
        }))
    }

    /// A printer that prints nothing: for code that runs a core in-process and reads its report.
    pub fn silent() -> Printer {
        Printer(Arc::new(Inner {
            mode: Mode::default(),
            enabled: false,
            json_printed: AtomicBool::new(false),
        }))
    }

    pub fn mode(&self) -> Mode {
        self.0.mode
    }

    pub fn json_mode(&self) -> bool {
        self.0.mode.json
    }

    /// A human result line on stdout; silent in `--json` mode (stdout then holds only the
    /// document).
    pub fn line(&self, text: impl AsRef<str>) {
        if self.0.enabled && !self.0.mode.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", scrub(text.as_ref()));
        }
    }

    /// Whether `status` lines are shown (not with `--quiet`, nor from a silent printer).
    pub fn shows_status(&self) -> bool {
        self.0.enabled && !self.0.mode.quiet
    }

    /// A status line for people on stderr; silent with `--quiet`.
    pub fn status(&self, text: impl AsRef<str>) {
        if self.0.enabled && !self.0.mode.quiet {
            to_stderr(format_args!("{}", scrub(text.as_ref())));
        }
    }

    /// A line on stderr that is shown even with `--quiet` (a plan before a question).
    pub fn tell(&self, text: impl AsRef<str>) {
        if self.0.enabled {
            to_stderr(format_args!("{}", scrub(text.as_ref())));
        }
    }

    pub fn warn(&self, text: impl AsRef<str>) {
        if self.0.enabled {
            to_stderr(format_args!(
                "{} {}",
                self.paint("warning:", "33"),
                scrub(text.as_ref())
            ));
        }
    }

    pub fn error(&self, text: impl AsRef<str>) {
        if self.0.enabled {
            to_stderr(format_args!(
                "{} {}",
                self.paint("error:", "31"),
                scrub(text.as_ref())
            ));
        }
    }

    /// The command's JSON document on stdout, pretty-printed.
    pub fn json(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
        self.write_json(&text);
    }

    /// The command's JSON document on one line of stdout, flushed: for servers, whose first
    /// line a parent process reads before they finish.
    pub fn json_line(&self, value: &Value) {
        let text = serde_json::to_string(value).expect("JSON values always serialize");
        self.write_json(&text);
    }

    fn write_json(&self, text: &str) {
        self.0.json_printed.store(true, Ordering::Relaxed);
        if self.0.enabled {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", scrub(text));
            let _ = out.flush();
        }
    }

    /// Whether the command already printed its JSON document (an error then adds no second one).
    pub fn json_printed(&self) -> bool {
        self.0.json_printed.load(Ordering::Relaxed)
    }

    /// `text` in an ANSI colour when colour is on (`code` "1" bold, "31" red, "32" green, "33"
    /// yellow).
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.0.mode.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn ok_mark(&self, ok: bool) -> String {
        if ok {
            self.paint("ok", "32")
        } else {
            self.paint("FAIL", "31")
        }
    }

    fn shows_progress(&self) -> bool {
        self.0.enabled && self.0.mode.progress
    }

    /// A spinner on stderr, hidden unless progress is on.
    pub fn spinner(&self, message: impl AsRef<str>) -> ProgressBar {
        if !self.shows_progress() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
        );
        bar.set_message(scrub(message.as_ref()).into_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A bar of `len` steps on stderr, hidden unless progress is on.
    pub fn bar(&self, len: u64, message: impl AsRef<str>) -> ProgressBar {
        if !self.shows_progress() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(scrub(message.as_ref()).into_owned());
        bar
    }
}

/// `text` with every control character (newlines and terminal escapes included) written as
/// an escape sequence.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Sets a spinner's message through the scrubber.
pub fn set_message(bar: &ProgressBar, message: impl AsRef<str>) {
    bar.set_message(scrub(message.as_ref()).into_owned());
}

/// True when the process may ask a person a question: stdin is a TTY and `CI` is not set.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && !in_ci()
}

/// Where log lines (`-v`, `RUST_LOG`) go: stderr, through the scrubber.
pub fn log_writer() -> ScrubbedStderr {
    ScrubbedStderr
}

pub struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedStderr;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedStderr
    }
}

/// A panic (a bug) prints one scrubbed line and the exit code, no backtrace: no secret that
/// was in a panicking value's message reaches the terminal.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: stripe-ops hit a bug{at}: {}; please report it",
            scrub(&what)
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_printer_records_but_prints_nothing() {
        let p = Printer::silent();
        p.line("x");
        assert!(!p.json_printed());
        p.json(&serde_json::json!({"a": 1}));
        assert!(p.json_printed());
        assert!(p.spinner("s").is_hidden());
    }

    #[test]
    fn control_characters_from_the_network_are_escaped() {
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("evt_1\n2026 forged\u{1b}[2K"),
            "evt_1\\n2026 forged\\u{1b}[2K"
        );
    }

    #[test]
    fn colour_only_when_on() {
        let plain = Printer::new(Mode::default());
        assert_eq!(plain.ok_mark(false), "FAIL");
        let coloured = Printer::new(Mode {
            color: true,
            ..Mode::default()
        });
        assert_eq!(coloured.paint("ok", "32"), "\x1b[32mok\x1b[0m");
    }
}
