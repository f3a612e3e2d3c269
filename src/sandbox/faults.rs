//! `--fault NAME[=VALUE]`: the ways the sandbox app can be made broken on purpose, so that the
//! checks can be proven to catch broken apps.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

pub const NAMES: [&str; 7] = [
    "no-signature-check",
    "ignore-tolerance",
    "double-credit",
    "racy-credit",
    "webhook-500",
    "slow-webhook=MS",
    "drop-metadata",
];

/// One `--fault` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    NoSignatureCheck,
    IgnoreTolerance,
    DoubleCredit,
    RacyCredit,
    Webhook500,
    SlowWebhook(Duration),
    DropMetadata,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let fault = match name {
            "no-signature-check" => Fault::NoSignatureCheck,
            "ignore-tolerance" => Fault::IgnoreTolerance,
            "double-credit" => Fault::DoubleCredit,
            "racy-credit" => Fault::RacyCredit,
            "webhook-500" => Fault::Webhook500,
            "drop-metadata" => Fault::DropMetadata,
            "slow-webhook" => {
                let delay = value.ok_or("slow-webhook needs a delay: slow-webhook=2s")?;
                let delay = crate::duration::parse(delay)
                    .map_err(|e| format!("slow-webhook={delay}: {e}"))?;
                return Ok(Fault::SlowWebhook(delay));
            }
            _ => {
                return Err(format!(
                    "unknown fault {name:?}; the faults are {}",
                    NAMES.join(", ")
                ));
            }
        };
        if value.is_some() {
            return Err(format!("fault {name} takes no value"));
        }
        Ok(fault)
    }
}

/// The faults in effect; the default is a healthy app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    pub no_signature_check: bool,
    pub ignore_tolerance: bool,
    pub double_credit: bool,
    pub racy_credit: bool,
    pub webhook_500: bool,
    #[serde(skip)]
    pub slow_webhook: Option<Duration>,
    pub drop_metadata: bool,
}

impl Faults {
    pub fn from_list(faults: &[Fault]) -> Self {
        let mut f = Faults::default();
        for fault in faults {
            match fault {
                Fault::NoSignatureCheck => f.no_signature_check = true,
                Fault::IgnoreTolerance => f.ignore_tolerance = true,
                Fault::DoubleCredit => f.double_credit = true,
                Fault::RacyCredit => f.racy_credit = true,
                Fault::Webhook500 => f.webhook_500 = true,
                Fault::SlowWebhook(d) => f.slow_webhook = Some(*d),
                Fault::DropMetadata => f.drop_metadata = true,
            }
        }
        f
    }

    /// The active faults by name, for the start line.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let flags = [
            (self.no_signature_check, "no-signature-check"),
            (self.ignore_tolerance, "ignore-tolerance"),
            (self.double_credit, "double-credit"),
            (self.racy_credit, "racy-credit"),
            (self.webhook_500, "webhook-500"),
            (self.drop_metadata, "drop-metadata"),
        ];
        out.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| n.to_string()),
        );
        if let Some(d) = self.slow_webhook {
            out.push(format!("slow-webhook={}", crate::duration::human(d)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_rejects_bad_ones() {
        let list: Vec<Fault> = [
            "no-signature-check",
            "ignore-tolerance",
            "double-credit",
            "racy-credit",
            "webhook-500",
            "slow-webhook=250ms",
            "drop-metadata",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let f = Faults::from_list(&list);
        assert_eq!(f.slow_webhook, Some(Duration::from_millis(250)));
        assert_eq!(f.names().len(), 7);
        assert!("slow-webhook".parse::<Fault>().is_err());
        assert!("slow-webhook=x".parse::<Fault>().is_err());
        assert!("webhook-500=1".parse::<Fault>().is_err());
        let e = "double-credits".parse::<Fault>().unwrap_err();
        assert!(e.contains("double-credit"), "{e}");
        assert!(Faults::default().names().is_empty());
    }
}
