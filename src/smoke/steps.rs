//! Steps of a smoke: each runs with a spinner, is printed with its latency as it finishes, and is
//! recorded for the `--json` report. A failing step keeps its error's exit class.

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Exit, Result};
use crate::printer::Printer;

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
}

/// Why a smoke stopped: the step, its message and the exit class.
#[derive(Debug, Clone)]
pub struct StepFailure {
    pub step: String,
    pub exit: Exit,
    pub message: String,
}

impl StepFailure {
    fn of(step: &str, e: &Error) -> Self {
        Self {
            step: step.to_owned(),
            exit: e.exit,
            message: e.message().to_owned(),
        }
    }

    pub fn to_error(&self) -> Error {
        Error::new(
            self.exit,
            format!("smoke failed at step `{}`: {}", self.step, self.message),
        )
    }
}

/// Runs and records steps, printing each as it finishes.
#[derive(Debug, Default)]
pub struct Steps {
    pub done: Vec<Step>,
    pub failure: Option<StepFailure>,
    total: usize,
    out: Printer,
}

impl Steps {
    /// `total` is only used to number the steps for people.
    pub fn new(total: usize, out: &Printer) -> Self {
        Self {
            total,
            out: out.clone(),
            ..Self::default()
        }
    }

    /// Records a step that ran outside `run` (steps judged together): printed, and the first
    /// failure recorded is the smoke's.
    pub fn record(&mut self, name: &str, ms: f64, result: std::result::Result<String, Error>) {
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(e) => {
                if self.failure.is_none() {
                    self.failure = Some(StepFailure::of(name, &e));
                }
                (false, e.message().to_owned())
            }
        };
        self.out.line(format!(
            "  {:<4} {:<14} {:>8.1} ms  {}",
            self.out.ok_mark(ok),
            name,
            ms,
            detail
        ));
        self.done.push(Step {
            name: name.to_owned(),
            ok,
            ms,
            detail,
        });
    }

    /// The smoke's failure so far, as an error.
    pub fn failed(&self) -> Option<Error> {
        self.failure.as_ref().map(StepFailure::to_error)
    }

    /// Runs one step. `Ok(detail)` passes it; an error fails it and is returned as the step's
    /// failure, with the step named.
    pub async fn run<T>(
        &mut self,
        name: &str,
        fut: impl Future<Output = Result<(T, String)>>,
    ) -> Result<T> {
        let number = self.done.len() + 1;
        let spinner = self
            .out
            .spinner(format!("[{number}/{}] {name}", self.total));
        let started = Instant::now();
        let result = fut.await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        spinner.finish_and_clear();
        match result {
            Ok((value, detail)) => {
                self.record(name, ms, Ok(detail));
                Ok(value)
            }
            Err(e) => {
                // The smoke stops at this step: its failure is the smoke's.
                let failure = StepFailure::of(name, &e);
                self.failure = Some(failure.clone());
                self.record(name, ms, Err(e));
                Err(failure.to_error())
            }
        }
    }
}

/// The steps as CI rows.
pub fn ci_rows(steps: &[Step]) -> Vec<crate::ci::Row> {
    steps
        .iter()
        .map(|s| crate::ci::Row {
            name: s.name.clone(),
            outcome: if s.ok {
                crate::ci::Outcome::Passed
            } else {
                crate::ci::Outcome::Failed
            },
            ms: Some(s.ms),
            detail: s.detail.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_passes_and_failures_with_their_exit_class() {
        let mut steps = Steps::new(2, &Printer::silent());
        let v = steps
            .run("one", async { Ok((7, "fine".to_owned())) })
            .await
            .unwrap();
        assert_eq!(v, 7);
        let e = steps
            .run::<()>("two", async { Err(Error::external("refused")) })
            .await
            .unwrap_err();
        assert_eq!(e.exit, Exit::External);
        assert_eq!(e.message(), "smoke failed at step `two`: refused");
        assert_eq!(steps.done.len(), 2);
        assert!(steps.done[0].ok && !steps.done[1].ok);
        assert_eq!(steps.done[1].detail, "refused");
        assert_eq!(steps.failure.unwrap().step, "two");
    }
}
