//! Waiting done once: `poll` looks until something is ready, fails, or a deadline passes (the
//! deadline also bounds a look that hangs), and `Backoff` spaces retries. Used by the smokes,
//! check, the ECS rollout wait, fanout and the sandbox's delivery.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff: the n-th retry waits `base * 2^n`, capped at `max`. With `jitter`, the
/// upper half of that is random ("equal jitter"), so that receivers coming back are not hit in
/// lock-step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: bool,
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry); `unit` is a random number
    /// in `[0, 1)`, used only with jitter.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.max);
        if !self.jitter {
            return ceiling;
        }
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Why `poll` stopped without a result: the look said it failed, or the deadline passed (with
/// what the last look saw, if any look finished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped<F, S> {
    Failed(F),
    TimedOut(Option<S>),
}

/// Looks with `look` until it breaks with a result or a failure, pausing `pause(n)` after look
/// number `n` (0-based). A look that continues says what it saw, which the timeout reports.
/// The deadline bounds the whole wait, a hanging look included.
pub async fn poll<T, F, S, Fut>(
    deadline: Instant,
    pause: impl Fn(u32) -> Duration,
    mut look: impl FnMut() -> Fut,
) -> Result<T, Stopped<F, S>>
where
    Fut: Future<Output = ControlFlow<Result<T, F>, S>>,
{
    let mut last = None;
    let mut n = 0u32;
    loop {
        match tokio::time::timeout_at(deadline, look()).await {
            Err(_) => return Err(Stopped::TimedOut(last)),
            Ok(ControlFlow::Break(Ok(v))) => return Ok(v),
            Ok(ControlFlow::Break(Err(e))) => return Err(Stopped::Failed(e)),
            Ok(ControlFlow::Continue(seen)) => last = Some(seen),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Stopped::TimedOut(last));
        }
        tokio::time::sleep_until((now + pause(n)).min(deadline)).await;
        n = n.saturating_add(1);
    }
}

/// The shortest quiet window: time for a receiver that credits right after answering.
pub const MIN_QUIET: Duration = Duration::from_millis(300);

/// How long to watch that something does not happen (a second credit): three times the slowest
/// processing seen, at least `MIN_QUIET`, at most `max`; `max` when nothing was seen yet.
pub fn quiet_window(slowest: Option<Duration>, max: Duration) -> Duration {
    match slowest {
        Some(s) => s.saturating_mul(3).clamp(MIN_QUIET.min(max), max),
        None => max,
    }
}

/// A deadline `after` from now that cannot overflow (durations from flags are bounded, but a
/// library caller may pass anything).
pub fn deadline_in(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + crate::duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
        jitter: true,
    };

    #[test]
    fn doubles_with_equal_jitter() {
        assert_eq!(B.delay(0, 0.0), Duration::from_millis(50));
        assert!(B.delay(0, 0.999_999) < Duration::from_millis(100));
        assert_eq!(B.delay(3, 0.0), Duration::from_millis(400));
        assert_eq!(B.delay(3, 0.5), Duration::from_millis(600));
        let plain = Backoff { jitter: false, ..B };
        assert_eq!(plain.delay(2, 0.9), Duration::from_millis(400));
    }

    #[test]
    fn is_capped_and_never_overflows() {
        assert_eq!(B.delay(20, 0.0), Duration::from_secs(5));
        assert_eq!(B.delay(u32::MAX, 1.0), Duration::from_secs(10));
        assert!(B.delay(40, 0.7) <= B.max);
    }

    #[test]
    fn the_quiet_window_follows_the_slowest_processing_seen() {
        let max = Duration::from_secs(10);
        assert_eq!(quiet_window(None, max), max);
        assert_eq!(quiet_window(Some(Duration::ZERO), max), MIN_QUIET);
        assert_eq!(
            quiet_window(Some(Duration::from_millis(400)), max),
            Duration::from_millis(1200)
        );
        assert_eq!(quiet_window(Some(Duration::from_secs(5)), max), max);
        assert_eq!(
            quiet_window(Some(Duration::ZERO), Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn poll_returns_what_is_ready_fails_or_times_out_with_the_last_look() {
        let deadline = deadline_in(Duration::from_secs(1));
        let mut n = 0;
        let got: Result<u32, Stopped<(), String>> = poll(
            deadline,
            |_| Duration::from_millis(100),
            || {
                n += 1;
                let now = n;
                async move {
                    if now == 3 {
                        ControlFlow::Break(Ok(now))
                    } else {
                        ControlFlow::Continue(format!("look {now}"))
                    }
                }
            },
        )
        .await;
        assert_eq!(got, Ok(3));

        let failed: Result<(), Stopped<&str, ()>> = poll(
            deadline_in(Duration::from_secs(1)),
            |_| Duration::ZERO,
            || async { ControlFlow::Break(Err("bad")) },
        )
        .await;
        assert_eq!(failed, Err(Stopped::Failed("bad")));

        let timed_out: Result<(), Stopped<(), &str>> = poll(
            deadline_in(Duration::from_secs(1)),
            |_| Duration::from_millis(300),
            || async { ControlFlow::Continue("still 0") },
        )
        .await;
        assert_eq!(timed_out, Err(Stopped::TimedOut(Some("still 0"))));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_a_look_that_hangs() {
        let started = Instant::now();
        let hung: Result<(), Stopped<(), ()>> = poll(
            deadline_in(Duration::from_secs(3)),
            |_| Duration::ZERO,
            std::future::pending,
        )
        .await;
        assert_eq!(hung, Err(Stopped::TimedOut(None)));
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }
}
