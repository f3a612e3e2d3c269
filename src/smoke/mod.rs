//! The smokes of a deployed app's top-up flow: the deterministic smoke (signed synthetic webhook,
//! credit, replay, forged and stale deliveries) and the real-checkout smoke with receipts,
//! optionally paying through WebDriver.
//!
//! The flows are callable from code: `deterministic::run`, `real::create`, `real::verify`,
//! `real::run` (the whole real-checkout flow), `automate::pay`.

pub mod automate;
pub mod deterministic;
mod negative;
pub mod real;
pub mod receipt;
pub mod session;
pub mod steps;

pub use deterministic::{DeterministicOptions, SmokeReport};
pub use steps::Step;

pub const DEFAULT_TOPUP_CENTS: i64 = 500;
pub const MIN_TOPUP_CENTS: i64 = 100;
pub const MAX_TOPUP_CENTS: i64 = 50_000;

/// Top-ups outside 100..=50000 cents are refused, never clamped.
pub fn check_amount(cents: i64) -> std::result::Result<i64, String> {
    if (MIN_TOPUP_CENTS..=MAX_TOPUP_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(format!(
            "top-up must be between {MIN_TOPUP_CENTS} and {MAX_TOPUP_CENTS} cents, got {cents}"
        ))
    }
}

/// A whole number of cents within the allowed range (the `--topup-cents` flag).
pub fn parse_amount(s: &str) -> std::result::Result<i64, String> {
    let cents: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of cents"))?;
    check_amount(cents)
}

pub fn default_success_url(base_url: &str) -> String {
    format!(
        "{}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        base_url.trim_end_matches('/')
    )
}

pub fn default_cancel_url(base_url: &str) -> String {
    format!("{}/billing/cancel", base_url.trim_end_matches('/'))
}

/// Quotes a word for a POSIX shell when it needs it (for the commands printed to resume).
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_outside_the_range_are_refused_not_clamped() {
        assert_eq!(parse_amount("500"), Ok(500));
        assert_eq!(parse_amount("100"), Ok(100));
        assert_eq!(parse_amount("50000"), Ok(50000));
        assert!(
            parse_amount("99")
                .unwrap_err()
                .contains("between 100 and 50000")
        );
        assert!(parse_amount("50001").is_err());
        assert!(parse_amount("5.5").unwrap_err().contains("whole number"));
    }

    #[test]
    fn default_return_urls_hang_off_the_base() {
        assert_eq!(
            default_success_url("http://a/"),
            "http://a/billing/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(default_cancel_url("http://a"), "http://a/billing/cancel");
    }

    #[test]
    fn quoting_for_the_resume_command() {
        assert_eq!(shell_quote("receipts/a-b_c.json"), "receipts/a-b_c.json");
        assert_eq!(shell_quote("my receipts/x.json"), "'my receipts/x.json'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
