//! The one duration type of every flag and config key: `90s`, `15m`, `1h 30m`, `250ms`, `3d`
//! (humantime's forms), or a bare number of seconds (`10`, `1.5`). Parsing is total: negative,
//! NaN, infinite and absurd values are refused with a message, never a panic, and nothing a user
//! can type makes `Instant + duration` overflow later.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest duration any flag accepts: a year. Longer is a typo, and it keeps every
/// deadline computed from a flag far away from `Instant`'s overflow.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// A parsed, bounded duration (zero allowed; `positive` refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

impl Span {
    pub const fn secs(s: u64) -> Self {
        Span(Duration::from_secs(s))
    }

    pub const fn millis(ms: u64) -> Self {
        Span(Duration::from_millis(ms))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Whole seconds, for flags Stripe's libraries express in seconds (the tolerance).
    pub fn whole_secs(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl From<Span> for Duration {
    fn from(s: Span) -> Duration {
        s.0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

/// `1.5s`, `15m`, `250ms`: how durations are shown back to people.
pub fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 || d >= Duration::from_secs(60) {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse(text).map(Span)
    }
}

/// Parses a duration: a bare number is seconds (`10`, `1.5`), anything else goes to humantime
/// (`90s`, `15m`, `1h 30m`, `250ms`, `3d`). Refuses what is not finite, negative or above `MAX`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let examples = "such as 30s, 15m, 1h or 250ms (a bare number is seconds)";
    if t.is_empty() {
        return Err(format!(
            "an empty value is not a duration; give one {examples}"
        ));
    }
    let d = if looks_numeric(t) {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("{t:?} is not a duration {examples}"))?;
        if secs.is_nan() || secs < 0.0 {
            return Err(format!("{t:?} is not a duration: it must not be negative"));
        }
        if !secs.is_finite() || secs > MAX.as_secs_f64() {
            return Err(too_long(t));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(t),
            other => format!("{t:?} is not a duration {examples}: {other}"),
        })?
    };
    if d > MAX {
        return Err(too_long(t));
    }
    Ok(d)
}

fn too_long(t: &str) -> String {
    format!(
        "{t:?} is longer than the longest duration accepted ({})",
        human(MAX)
    )
}

/// `-1`, `1.5`, `1e3`, `nan`, `inf`: what Rust's float parser would take, so that the seconds
/// path (not humantime) judges it.
fn looks_numeric(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    matches!(body, "nan" | "inf" | "infinity")
        || (body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-')))
}

/// A clap value parser for durations that must be above zero (timeouts, intervals).
pub fn positive(text: &str) -> Result<Span, String> {
    let d = parse(text)?;
    if d.is_zero() {
        return Err(format!("{:?} must be longer than zero", text.trim()));
    }
    Ok(Span(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds_and_units_are_humantimes() {
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 10.0 "), Ok(Duration::from_secs(10)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("1e3"), Ok(Duration::from_secs(1000)));
    }

    #[test]
    fn out_of_range_values_are_refused_not_panicked_on() {
        for bad in [
            "-1",
            "-0.5",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "infinity",
            "1e300",
            "1e20",
            "99999999999999999999",
            "3381903080180084463m",
            "366d",
            "",
            "  ",
            "soon",
            "3 weeks later",
            "5 parsecs",
            "1..2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("365d").is_ok());
        assert!(positive("0s").unwrap_err().contains("longer than zero"));
        assert!(positive("0").is_err());
        assert_eq!(positive("2s"), Ok(Span::secs(2)));
    }

    #[test]
    fn shown_back_in_the_same_forms() {
        assert_eq!(human(Duration::from_secs(900)), "15m");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(Span::secs(3600).to_string(), "1h");
    }

    #[test]
    fn every_string_parses_or_errs_without_panicking() {
        // A small deterministic fuzz over the characters a duration is made of.
        let alphabet = [
            '0', '1', '9', '.', 'e', '-', '+', 's', 'm', 'h', 'd', ' ', 'n', 'i',
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 12) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((state >> (i * 4)) % alphabet.len() as u64) as usize])
                .collect();
            if let Ok(d) = parse(&s) {
                assert!(d <= MAX, "{s:?}");
            }
        }
    }
}
