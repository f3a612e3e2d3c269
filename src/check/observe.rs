//! A receiver's state seen from outside, for the idempotency and connect cases of any receiver:
//! `--observe CMD` runs a shell command and `--observe-url URL` GETs a URL; what they print is
//! the state. It may hold secrets (a database's rows), so it is only ever compared, never printed:
//! reports say how it changed ("the numbers moved by +1", "2 lines added"), never what it is.
//! A failing or hanging observer is an input error (exit 2), bounded by `--timeout`.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Most an observer may print.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObserverSpec {
    /// Run with `sh -c`; its stdout is the state.
    Command(String),
    /// GET; a 2xx answer's body is the state.
    Url(String),
}

/// What an observer printed: compared, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct State(Vec<u8>);

impl State {
    pub fn new(bytes: Vec<u8>) -> Self {
        State(bytes)
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "State({} bytes)", self.0.len())
    }
}

pub struct Observer {
    spec: ObserverSpec,
    timeout: Duration,
    http: reqwest::Client,
}

impl Observer {
    pub fn new(spec: ObserverSpec, timeout: Duration) -> Result<Self> {
        Ok(Self {
            spec,
            timeout,
            http: crate::http::client(timeout)?,
        })
    }

    /// What the flag is, for messages (the command is the user's own text; a URL is shown
    /// without its password).
    pub fn describe(&self) -> String {
        match &self.spec {
            ObserverSpec::Command(_) => "the --observe command".to_owned(),
            ObserverSpec::Url(url) => format!("--observe-url {}", crate::http::display_url(url)),
        }
    }

    /// One observation, within `--timeout`.
    pub async fn observe(&self) -> Result<State> {
        match &self.spec {
            ObserverSpec::Command(cmd) => self.run_command(cmd).await,
            ObserverSpec::Url(url) => self.get(url).await,
        }
    }

    async fn run_command(&self, cmd: &str) -> Result<State> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // Its errors may quote what it reads (a connection string, a row): not shown.
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::usage(format!("cannot run the --observe command: {e}")))?;
        let group = child.id();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let read = async {
            use tokio::io::AsyncReadExt;
            let mut out = Vec::new();
            (&mut stdout)
                .take(MAX_STATE_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .await?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((out, status))
        };
        let finished = tokio::time::timeout(self.timeout, read).await;
        let Ok(done) = finished else {
            crate::process::kill_group(group);
            return Err(Error::usage(format!(
                "the --observe command did not finish within {} (--timeout); it must print the receiver's state and exit",
                crate::duration::human(self.timeout)
            )));
        };
        let (out, status) =
            done.map_err(|e| Error::usage(format!("the --observe command failed: {e}")))?;
        crate::process::kill_group(group);
        if !status.success() {
            let how = status.code().map_or_else(
                || "was killed by a signal".to_owned(),
                |c| format!("exited with status {c}"),
            );
            return Err(Error::usage(format!(
                "the --observe command {how} (what it printed is not shown: it may hold secrets; run it by hand to see why)"
            )));
        }
        Self::bounded(out, "the --observe command printed")
    }

    async fn get(&self, url: &str) -> Result<State> {
        let shown = crate::http::display_url(url);
        let resp = self.http.get(url).send().await.map_err(|e| {
            Error::usage(format!(
                "--observe-url {shown} {}",
                crate::http::describe_failure(&e)
            ))
        })?;
        let status = resp.status();
        let body = crate::http::read_body(
            resp,
            crate::http::Limits {
                keep: MAX_STATE_BYTES + 1,
                drain: MAX_STATE_BYTES as u64 + 1,
            },
        )
        .await
        .map_err(|e| {
            Error::usage(format!(
                "--observe-url {shown} {}",
                crate::http::describe_failure(&e)
            ))
        })?;
        if !status.is_success() {
            return Err(Error::usage(format!(
                "--observe-url {shown} answered {status}, expected 2xx with the receiver's state (the body is not shown: it may hold secrets)"
            )));
        }
        Self::bounded(body.kept, &format!("--observe-url {shown} answered"))
    }

    fn bounded(out: Vec<u8>, what: &str) -> Result<State> {
        if out.len() > MAX_STATE_BYTES {
            return Err(Error::usage(format!(
                "{what} more than {} KiB: print counts or one line per record, not the whole store",
                MAX_STATE_BYTES / 1024
            )));
        }
        Ok(State(out))
    }
}

/// How the state changed between two observations, without saying what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    None,
    /// The same text with only numbers different: how much each moved (counts, sums, balances).
    Numbers(Vec<f64>),
    /// Otherwise: how many lines appeared and went (one line per record).
    Lines {
        added: usize,
        removed: usize,
    },
}

impl Change {
    pub fn is_none(&self) -> bool {
        *self == Change::None
    }

    /// The same change as `other`: the same numbers moved by the same amounts, or as many lines
    /// appeared and went.
    pub fn same_as(&self, other: &Change) -> bool {
        match (self, other) {
            (Change::Numbers(a), Change::Numbers(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0))
            }
            _ => self == other,
        }
    }

    /// In words, with no value of the state in it: only how far numbers moved and how many lines.
    pub fn describe(&self) -> String {
        match self {
            Change::None => "nothing changed".to_owned(),
            Change::Numbers(moves) => {
                let moved: Vec<String> = moves
                    .iter()
                    .filter(|m| **m != 0.0)
                    .map(|m| format!("{m:+}"))
                    .collect();
                format!("numbers moved by {}", moved.join(", "))
            }
            Change::Lines { added, removed } => match (added, removed) {
                (a, 0) => format!("{a} line(s) added"),
                (0, r) => format!("{r} line(s) removed"),
                (a, r) => format!("{a} line(s) added, {r} removed"),
            },
        }
    }
}

/// How `after` differs from `before`.
pub fn change(before: &State, after: &State) -> Change {
    if before == after {
        return Change::None;
    }
    let (a, b) = (
        String::from_utf8_lossy(&before.0),
        String::from_utf8_lossy(&after.0),
    );
    let (ta, tb) = (tokens(&a), tokens(&b));
    let same_shape = ta.len() == tb.len()
        && ta.iter().zip(&tb).all(|(x, y)| match (x, y) {
            (Token::Text(x), Token::Text(y)) => x == y,
            (Token::Number(_), Token::Number(_)) => true,
            _ => false,
        });
    if same_shape {
        let moves = ta
            .iter()
            .zip(&tb)
            .filter_map(|pair| match pair {
                (Token::Number(x), Token::Number(y)) => Some(y - x),
                _ => None,
            })
            .collect();
        return Change::Numbers(moves);
    }
    lines_changed(&a, &b)
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Text(&'a str),
    Number(f64),
}

/// The text cut into numbers (standing alone: not inside an id such as `cus_9a1`) and the
/// text between them.
fn tokens(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let (mut i, mut text_from) = (0, 0);
    while i < bytes.len() {
        let starts = (bytes[i].is_ascii_digit()
            || (bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            && (i == 0 || !word(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
            end += 1;
        }
        let standalone = end == bytes.len() || !word(bytes[end]);
        match text[i..end].parse::<f64>() {
            Ok(n) if standalone => {
                if text_from < i {
                    out.push(Token::Text(&text[text_from..i]));
                }
                out.push(Token::Number(n));
                text_from = end;
            }
            _ => {}
        }
        i = end;
    }
    if text_from < text.len() {
        out.push(Token::Text(&text[text_from..]));
    }
    out
}

fn lines_changed(before: &str, after: &str) -> Change {
    let mut counts: std::collections::HashMap<&str, i64> = Default::default();
    for l in before.lines() {
        *counts.entry(l).or_default() -= 1;
    }
    for l in after.lines() {
        *counts.entry(l).or_default() += 1;
    }
    let added = counts
        .values()
        .filter(|n| **n > 0)
        .map(|n| *n as usize)
        .sum();
    let removed = counts
        .values()
        .filter(|n| **n < 0)
        .map(|n| (-*n) as usize)
        .sum();
    Change::Lines { added, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> State {
        State(text.as_bytes().to_vec())
    }

    #[test]
    fn numbers_that_move_are_measured() {
        assert_eq!(change(&s("3"), &s("3")), Change::None);
        assert_eq!(change(&s("3\n"), &s("4\n")), Change::Numbers(vec![1.0]));
        assert_eq!(
            change(&s("tenants=2 balance=-1.5"), &s("tenants=3 balance=498.5")),
            Change::Numbers(vec![1.0, 500.0])
        );
        let one = change(&s("{\"count\": 1}"), &s("{\"count\": 2}"));
        let twenty = change(&s("{\"count\": 2}"), &s("{\"count\": 22}"));
        assert!(!one.same_as(&twenty));
        assert!(one.same_as(&change(&s("{\"count\": 5}"), &s("{\"count\": 6}"))));
        assert_eq!(one.describe(), "numbers moved by +1");
    }

    #[test]
    fn numbers_inside_ids_are_text_and_lines_are_counted() {
        let before = s("sub_1a\ncus_9 active\n");
        let after = s("sub_1a\ncus_9 active\nsub_2b\n");
        assert_eq!(
            change(&before, &after),
            Change::Lines {
                added: 1,
                removed: 0
            }
        );
        let twice = change(&after, &s("sub_1a\ncus_9 active\nsub_2b\nsub_3c\nsub_3c\n"));
        assert_eq!(
            twice,
            Change::Lines {
                added: 2,
                removed: 0
            }
        );
        assert!(!twice.same_as(&change(&before, &after)));
        assert_eq!(twice.describe(), "2 line(s) added");
        // An id whose digits differ is not a number that moved.
        assert!(matches!(
            change(&s("last=evt_123"), &s("last=evt_456")),
            Change::Lines { .. }
        ));
    }

    #[test]
    fn a_state_is_never_shown() {
        let secret = s("sk_live_dontshowme");
        assert_eq!(format!("{secret:?}"), "State(18 bytes)");
        let c = change(&secret, &s("sk_live_other"));
        assert!(!c.describe().contains("sk_live"), "{}", c.describe());
    }

    #[test]
    fn tokens_never_panic() {
        let mut strings = crate::fuzz::Strings::new(0x0b5e_0001);
        for _ in 0..3000 {
            let a = strings.drawn_from(&["1", "-", ".", "a", "_", " ", "\n", "é", "2.5", "-x"], 12);
            let b = strings.drawn_from(&["1", "-", ".", "a", "_", " ", "\n", "é", "2.5", "-x"], 12);
            let c = change(&s(&a), &s(&b));
            assert_eq!(c.is_none(), a == b);
        }
    }
}
