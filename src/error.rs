//! One error type for the whole tool. Every error carries the exit code it ends the process with,
//! so that the code is decided where the failure is understood, not guessed at the top.

use std::fmt;

/// Stable, documented exit codes (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A check or assertion failed.
    Failed = 1,
    /// Usage, configuration or input error.
    Usage = 2,
    /// An external system failed: network, timeout, AWS or Stripe API error.
    External = 3,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    message: String,
    /// The HTTP status an outside service answered with, when that is the failure.
    status: Option<u16>,
    /// What a machine reading `--json` needs to know beyond the message (why a rollout failed).
    details: Option<serde_json::Value>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            status: None,
            details: None,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }
    /// Records the HTTP status the outside service answered with.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    pub fn status(&self) -> Option<u16> {
        self.status
    }
    /// The service answered, and refused the credentials (401 or 403).
    pub fn refused(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Exit::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(Exit::External, message)
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(Exit::Interrupted, message)
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Prefixes the message with what was being done: "reading receipt: invalid JSON ...".
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Attaches an exit class and a description to foreign errors.
pub trait ResultExt<T> {
    fn or_usage(self, what: impl fmt::Display) -> Result<T>;
    fn or_external(self, what: impl fmt::Display) -> Result<T>;
    fn or_failed(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> ResultExt<T> for std::result::Result<T, E> {
    fn or_usage(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::usage(format!("{what}: {e}")))
    }
    fn or_external(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::external(format!("{what}: {e}")))
    }
    fn or_failed(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::failed(format!("{what}: {e}")))
    }
}

/// Renders an error and every `source()` below it: reqwest and the AWS SDK hide the useful part
/// ("connection refused") there.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cur = s.source();
    }
    text
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::external(chain(&e))
    }
}
