//! The relay's log: one line per event and per target outcome on stderr, with a UTC timestamp
//! (silent with `--quiet`). Control characters are escaped, so that text from the network (an
//! event id) cannot forge a line or move the terminal's cursor.
//!
//! Lines are written by one thread, in order, all those waiting at once in one write through
//! the printer (and its scrubber): at thousands of events a second the relay logs several
//! lines per event, and a write to stderr per line cost more than the rest of the line. The
//! first line into an empty queue wakes the thread, which then gathers for `COALESCE` before
//! it writes: waking it for every line (a futex call and a context switch each) was a tenth of
//! the relay's CPU at c=16 (perf, `cargo bench --bench fanout`). So a line is written at most
//! `COALESCE` after it was logged; the last ones are written before the relay exits (when the
//! last handle goes), not after a crash. The writer also stamps and escapes them: the relay's
//! async thread logs four lines per event at three targets and was the busy one at
//! concurrency 16 (98 %); without that work it delivered 16,488-18,619 events/s instead of
//! 15,204-17,959 (`cargo bench --bench fanout`, two runs of 4 rounds beside the build before).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::printer::Printer;

/// How long the writer gathers lines after the first one woke it. At 10 ms, events 38 ms apart
/// (26 a second) woke the writer for each one; at 50 ms its CPU fell from 13.5 to 7.8-8.1 ms
/// in 7 s (`perf stat --per-thread`, two runs each).
const COALESCE: Duration = Duration::from_millis(50);

/// A handle on the relay's log (cheap to clone).
#[derive(Clone, Debug)]
pub struct Log(Option<Arc<Sink>>);

#[derive(Debug)]
struct Sink {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Lines not written yet, with when they were logged: the writer formats them, not the
    /// thread that logs (the relay's async thread logs four lines per event at three targets).
    lines: Vec<(SystemTime, String)>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Log {
    /// A log to `out`'s status lines (nothing at all when it shows none).
    pub fn new(out: &Printer) -> Log {
        if !out.shows_status() {
            return Log(None);
        }
        let shared = Arc::new(Shared::default());
        let (theirs, out) = (shared.clone(), out.clone());
        let writer = std::thread::Builder::new()
            .name("fanout-log".into())
            .spawn(move || write(&theirs, &out))
            .ok();
        Log(Some(Arc::new(Sink { shared, writer })))
    }

    pub fn silent() -> Log {
        Log(None)
    }

    /// Whether lines are written at all (`--quiet`: none), for a caller that can skip making one.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    pub fn line(&self, line: impl Into<String>) {
        let Some(sink) = &self.0 else {
            return;
        };
        let now = SystemTime::now();
        let mut queue = sink.shared.lock();
        let was_empty = queue.lines.is_empty();
        queue.lines.push((now, line.into()));
        if was_empty {
            sink.shared.wake.notify_one();
        }
    }
}

/// A line built by appending, for the lines logged per event (one when it is received, one per
/// delivery): made with `format!` (a call through its machinery per argument, the milliseconds
/// in exact decimal mode) they took 2.7 % of the relay's samples at concurrency 16 (`perf
/// record`, `cargo bench --bench fanout` part `compare`), built so 0.5 %.
pub struct Line(String);

impl Line {
    pub fn new(text: &str) -> Line {
        let mut line = String::with_capacity(128);
        line.push_str(text);
        Line(line)
    }

    pub fn text(mut self, text: &str) -> Line {
        self.0.push_str(text);
        self
    }

    pub fn num(mut self, n: impl itoa::Integer) -> Line {
        self.0.push_str(itoa::Buffer::new().format(n));
        self
    }

    /// Milliseconds to a tenth, as `{:.1}` prints them (a tie rounds up, not to even).
    pub fn ms(self, ms: f64) -> Line {
        let tenths = (ms.max(0.0) * 10.0).round() as u64;
        let mut line = self.num(tenths / 10);
        line.0.push('.');
        line.0.push(char::from(b'0' + (tenths % 10) as u8));
        line
    }
}

impl From<Line> for String {
    fn from(line: Line) -> String {
        line.0
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write(shared: &Shared, out: &Printer) {
    let mut lines = Vec::new();
    let mut text = String::new();
    loop {
        let closing = {
            let mut queue = shared.lock();
            while queue.lines.is_empty() && !queue.closing {
                queue = shared.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            // Lines logged meanwhile do not wake it again (the queue is not empty): one write
            // and one wake-up per `COALESCE` at most, however many lines. Closing cuts it short.
            queue = match shared
                .wake
                .wait_timeout_while(queue, COALESCE, |q| !q.closing)
            {
                Ok((queue, _)) => queue,
                Err(e) => e.into_inner().0,
            };
            std::mem::swap(&mut lines, &mut queue.lines);
            queue.closing
        };
        for (at, line) in lines.drain(..) {
            if !text.is_empty() {
                text.push('\n');
            }
            push_line(&mut text, at, &line);
        }
        if !text.is_empty() {
            out.status(&text);
        }
        text.clear();
        if closing && shared.lock().lines.is_empty() {
            return;
        }
    }
}

/// One line as written: its UTC time, then the line with its control characters escaped.
fn push_line(text: &mut String, at: SystemTime, line: &str) {
    let at = time::OffsetDateTime::from(at);
    match at.format(&time::format_description::well_known::Rfc3339) {
        Ok(stamp) => text.push_str(&stamp),
        Err(_) => text.push('-'),
    }
    text.push(' ');
    text.push_str(&crate::printer::escape_controls(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_line_prints_numbers_and_milliseconds_as_format_does() {
        let line: String = Line::new("event ")
            .text("evt_1")
            .text(" #")
            .num(42u64)
            .text(", ")
            .num(200u16)
            .text(" in ")
            .ms(0.0)
            .text(" ")
            .ms(1234.56)
            .into();
        assert_eq!(line, "event evt_1 #42, 200 in 0.0 1234.6");
        for micros in (0..20_000).step_by(7) {
            let ms = micros as f64 / 1000.0 + 0.0004;
            let built: String = Line::new("").ms(ms).into();
            assert_eq!(built, format!("{ms:.1}"), "{micros} µs");
        }
    }

    #[test]
    fn a_line_is_written_with_its_utc_time_and_its_control_characters_escaped() {
        let mut text = String::new();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        push_line(&mut text, at, "event evt_1\n2023 forged\x1b[2J");
        assert_eq!(
            text,
            "2023-11-14T22:13:20.123Z event evt_1\\n2023 forged\\u{1b}[2J"
        );
    }
}
