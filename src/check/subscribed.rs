//! What the receiver's webhook endpoint at Stripe subscribes to: the types `check` sends by
//! default, and the API version the events name, as Stripe would deliver them to that endpoint.

use std::time::Duration;

use crate::error::{Exit, Result};
use crate::printer::Printer;
use crate::secret::SecretString;
use crate::shutdown::Shutdown;
use crate::stripe_api::{StripeClient, WebhookEndpoint};

/// The enabled endpoints whose URL is the receiver's: what they subscribe to and how they are
/// pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The endpoint ids, for the report.
    pub endpoints: Vec<String>,
    /// Their `enabled_events`, merged (`*` is every type).
    pub events: Vec<String>,
    /// The version they are pinned to, when they all agree on one.
    pub api_version: Option<String>,
}

/// Reads the webhook endpoints at Stripe (`api_base`, with `key`) and says what the one at
/// `url` subscribes to. When Stripe cannot say, `None` with a note: check goes on with the
/// classic types and the catalogue's version.
pub async fn read(
    api_base: &str,
    key: SecretString,
    url: &str,
    timeout: Duration,
    out: &Printer,
    stop: &Shutdown,
) -> Result<Option<Subscribed>> {
    let client = StripeClient::new(api_base, key, timeout)?;
    match stop.guard(client.list_webhook_endpoints()).await {
        Ok(endpoints) => {
            let found = at(&endpoints, url);
            match &found {
                Some(s) => out.tell(format!(
                    "note: {} at Stripe ({}) subscribes to {}{}",
                    url,
                    s.endpoints.join(", "),
                    s.events.join(","),
                    s.api_version
                        .as_ref()
                        .map(|v| format!(", pinned to {v}"))
                        .unwrap_or_default()
                )),
                None => out.tell(format!(
                    "note: no enabled webhook endpoint at Stripe has the URL {url}: the classic types, the catalogue's API version"
                )),
            }
            Ok(found)
        }
        Err(e) if e.exit == Exit::Interrupted => Err(e),
        Err(e) => {
            out.tell(format!(
                "note: cannot list the webhook endpoints at Stripe ({}): the classic types, the catalogue's API version",
                e.message()
            ));
            Ok(None)
        }
    }
}

/// Pure: the enabled endpoints at `url` (exact match, as Stripe delivers to the URL it has).
pub fn at(endpoints: &[WebhookEndpoint], url: &str) -> Option<Subscribed> {
    let at_url: Vec<&WebhookEndpoint> = endpoints
        .iter()
        .filter(|e| e.enabled() && e.url == url)
        .collect();
    let first = at_url.first()?;
    let mut events: Vec<String> = at_url
        .iter()
        .flat_map(|e| e.enabled_events.iter().cloned())
        .collect();
    events.sort();
    events.dedup();
    let api_version = first
        .api_version
        .clone()
        .filter(|v| at_url.iter().all(|e| e.api_version.as_deref() == Some(v)));
    Some(Subscribed {
        endpoints: at_url.iter().map(|e| e.id.clone()).collect(),
        events,
        api_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(
        id: &str,
        url: &str,
        status: &str,
        events: &[&str],
        v: Option<&str>,
    ) -> WebhookEndpoint {
        serde_json::from_value(serde_json::json!({
            "id": id, "url": url, "status": status,
            "enabled_events": events, "api_version": v,
        }))
        .unwrap()
    }

    #[test]
    fn merges_the_enabled_endpoints_at_the_url() {
        let url = "https://app.example.com/webhooks/stripe";
        let list = [
            endpoint(
                "we_1",
                url,
                "enabled",
                &["invoice.paid", "customer.created"],
                Some("2025-03-31.basil"),
            ),
            endpoint(
                "we_2",
                url,
                "enabled",
                &["invoice.paid", "payout.paid"],
                Some("2025-03-31.basil"),
            ),
            endpoint("we_3", url, "disabled", &["*"], None),
            endpoint(
                "we_4",
                "https://other.example.com/",
                "enabled",
                &["*"],
                None,
            ),
        ];
        let s = at(&list, url).unwrap();
        assert_eq!(s.endpoints, ["we_1", "we_2"]);
        assert_eq!(
            s.events,
            ["customer.created", "invoice.paid", "payout.paid"]
        );
        assert_eq!(s.api_version.as_deref(), Some("2025-03-31.basil"));
        assert!(at(&list, "https://nowhere.example.com/").is_none());
    }

    #[test]
    fn disagreeing_versions_pin_none() {
        let url = "https://a.example.com/";
        let list = [
            endpoint("we_1", url, "enabled", &["*"], Some("2024-06-20")),
            endpoint("we_2", url, "enabled", &["*"], None),
        ];
        assert_eq!(at(&list, url).unwrap().api_version, None);
    }
}
