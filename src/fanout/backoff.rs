//! Retry timing (pure): exponential backoff with jitter, and the human durations of the flags.

use std::time::Duration;

/// Exponential backoff: the n-th retry waits `base * 2^n`, capped at `max`, of which the upper
/// half is random ("equal jitter"), so that targets coming back are not hit in lock-step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry); `unit` is a random number
    /// in `[0, 1)`.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Parses `3d`, `12h`, `30m`, `45s`, `250ms` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 3d, 12h, 30m, 45s or 250ms"))?;
    let seconds = |s: u64| Duration::from_secs(n.saturating_mul(s));
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "d" => Ok(seconds(86_400)),
        _ => Err(format!(
            "{text:?} has an unknown unit {unit:?} (use ms, s, m, h or d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };

    #[test]
    fn doubles_with_equal_jitter() {
        assert_eq!(B.delay(0, 0.0), Duration::from_millis(50));
        assert!(B.delay(0, 0.999_999) < Duration::from_millis(100));
        assert_eq!(B.delay(3, 0.0), Duration::from_millis(400));
        assert_eq!(B.delay(3, 0.5), Duration::from_millis(600));
    }

    #[test]
    fn is_capped_and_never_overflows() {
        assert_eq!(B.delay(20, 0.0), Duration::from_secs(5));
        assert_eq!(B.delay(u32::MAX, 1.0), Duration::from_secs(10));
        assert!(B.delay(40, 0.7) <= B.max);
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("3 weeks")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("d").unwrap_err().contains("not a duration"));
    }
}
