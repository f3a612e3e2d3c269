//! API versions: the catalogue's own (the newest Stripe's libraries pin), and what stripe-ops
//! knows about how an older version shapes the objects an event carries.
//!
//! stripe-ops does not translate objects between versions: a template keeps the catalogue
//! version's shape whatever `api_version` it names. Where a known change makes that shape differ
//! from what a receiver on an older version reads, it says so. The changes listed are those of
//! Stripe's API changelog (docs.stripe.com/changelog, "breaking changes") that move or remove a
//! field of an object events carry, and the fields the monthly release the catalogue moved to
//! added to such objects or made always present (stripe-node's CHANGELOG for the release that
//! pins it); the list is not complete, and says so.

/// The newest API version Stripe's official libraries pin, and the one every template names:
/// stripe-node 23.2.0's (`src/apiVersion.ts`). stripe-python 16.1.0, the newest on PyPI, still
/// pins 2026-10-28.endive (`_api_version.py`); its `construct_event` reads any version.
/// fixtures/generate.py has the same constant and refuses a stripe-node that pins another.
pub const API_VERSION: &str = "2026-11-18.endive";

/// One breaking change of an object's shape, at the version that made it.
struct Change {
    version: &'static str,
    object: &'static str,
    what: &'static str,
}

const CHANGES: &[Change] = &[
    Change {
        version: "2022-08-01",
        object: "checkout.session",
        what: "`shipping` became `shipping_details` and `shipping_rates` became `shipping_options`",
    },
    Change {
        version: "2022-11-15",
        object: "payment_intent",
        what: "the `charges` list was removed (use `latest_charge`)",
    },
    Change {
        version: "2022-11-15",
        object: "charge",
        what: "`refunds` is no longer included unless expanded",
    },
    Change {
        version: "2025-03-31",
        object: "invoice",
        what: "`subscription` moved to `parent.subscription_details.subscription`, and `paid`, `charge` and `payment_intent` were removed (see `status` and `payments`)",
    },
    Change {
        version: "2025-03-31",
        object: "line_item",
        what: "a line's `price` moved to `pricing.price_details` and its subscription item to `parent.subscription_item_details`",
    },
    Change {
        version: "2025-03-31",
        object: "subscription",
        what: "`current_period_start` and `current_period_end` moved to each subscription item",
    },
    // 2026-11-18.endive, stripe-node 23.2.0's CHANGELOG: fields of objects events carry.
    Change {
        version: "2026-11-18",
        object: "charge",
        what: "`payment_method_details.link.funding_sources` (also under `card.wallet.link`) and `payment_method_details.paypay.fingerprint` were added",
    },
    Change {
        version: "2026-11-18",
        object: "checkout.session",
        what: "`automatic_tax.address_collection_precision` was added",
    },
    Change {
        version: "2026-11-18",
        object: "dispute",
        what: "`evidence.appeal` is always present (null without an appeal)",
    },
    Change {
        version: "2026-11-18",
        object: "issuing.card",
        what: "`shipping.shipped_at` and `shipping.delivered_at` are always present",
    },
    Change {
        version: "2026-11-18",
        object: "payment_intent",
        what: "`payment_details.car_rental_data` and `payment_details.lodging_data` were added",
    },
    Change {
        version: "2026-11-18",
        object: "product",
        what: "`marketing_features[].loss_message` was added",
    },
    Change {
        version: "2026-11-18",
        object: "refund",
        what: "`application`, `destination_details.bizum` and `destination_details.upi` were added",
    },
    Change {
        version: "2026-11-18",
        object: "reporting.report_run",
        what: "`parameters.tax_invoice_month` was added",
    },
    Change {
        version: "2026-11-18",
        object: "treasury.inbound_transfer",
        what: "`failure_details.network_details` was added",
    },
    Change {
        version: "2026-11-18",
        object: "treasury.outbound_payment",
        what: "`returned_details.network_details` was added",
    },
    Change {
        version: "2026-11-18",
        object: "treasury.outbound_transfer",
        what: "`returned_details.network_details` was added",
    },
];

/// The date part of a version: `2025-03-31` of `2025-03-31.basil`.
fn date(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// What a receiver on `version` should know about events shaped at [`API_VERSION`] carrying
/// `object`: the known changes between the two, or that `version` is newer than the
/// catalogue's. Empty when the versions agree or no known change applies.
pub fn shape_notes(version: &str, object: &str) -> Vec<String> {
    if date(version) > date(API_VERSION) {
        return vec![format!(
            "{version} is newer than the catalogue's {API_VERSION}: the body names {version} but has {API_VERSION}'s shape"
        )];
    }
    let mut notes: Vec<String> = CHANGES
        .iter()
        .filter(|c| c.object == object && date(version) < c.version)
        .map(|c| {
            format!(
                "the {object} keeps {API_VERSION}'s shape, not {version}'s: since {} {}",
                c.version, c.what
            )
        })
        .collect();
    if !notes.is_empty() {
        notes.push(
            "stripe-ops does not translate objects between API versions; changes it does not know may apply too (docs.stripe.com/changelog)".to_owned(),
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_version_names_the_changes_of_the_object_since() {
        let notes = shape_notes("2024-06-20", "invoice");
        assert!(
            notes[0].contains("parent.subscription_details.subscription"),
            "{notes:?}"
        );
        assert!(notes.last().unwrap().contains("does not translate"));
        assert!(shape_notes("2024-06-20", "customer").is_empty());
        assert!(shape_notes("2025-03-31.basil", "invoice").is_empty());
        assert!(shape_notes(API_VERSION, "invoice").is_empty());
        // 2022-11-15's `charges`, 2026-11-18's `payment_details` fields, and the closing line.
        assert_eq!(shape_notes("2022-01-01", "payment_intent").len(), 3);
    }

    #[test]
    fn the_previous_monthly_release_hears_of_what_the_catalogues_added() {
        let notes = shape_notes("2026-10-28.endive", "refund");
        assert!(
            notes[0].contains("not 2026-10-28.endive's: since 2026-11-18 `application`"),
            "{notes:?}"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(shape_notes("2026-10-28.endive", "invoice").is_empty());
        assert!(shape_notes("2026-11-18.endive", "refund").is_empty());
    }

    #[test]
    fn a_newer_version_says_the_shape_is_the_catalogues() {
        let notes = shape_notes("2027-01-15.fig", "customer");
        assert!(notes[0].contains("newer than the catalogue's"), "{notes:?}");
    }
}
