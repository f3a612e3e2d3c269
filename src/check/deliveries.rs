//! The deliveries `check` makes (pure): each case's exact body and `Stripe-Signature`, the
//! tampered and odd ones, the top-up events of the app contract, and fresh objects for the
//! observed cases. The runner sends them; `judge` reads the answers.

use serde_json::Value;

use super::cases::{
    BEYOND_TOLERANCE, LARGE_BODY_BYTES, Oddity, Tamper, UNKNOWN_OBJECT, UNKNOWN_TYPE,
};
use crate::webhook::fixtures::{Prepared, SetOp};
use crate::webhook::signature::{self, Signer};

/// One HTTP delivery: the exact body and the `Stripe-Signature` value (none: no header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub body: String,
    pub header: Option<String>,
}

impl Delivery {
    pub fn signed(body: String, t: i64, signers: &[Signer]) -> Self {
        let header = signature::header(t, body.as_bytes(), signers);
        Self {
            body,
            header: Some(header),
        }
    }
}

/// A security case's delivery of `body` (a benign event rendered at `now`).
pub fn security_delivery(
    tamper: Tamper,
    body: String,
    signer: &Signer,
    now: i64,
    tolerance: i64,
) -> Delivery {
    let one = std::slice::from_ref(signer);
    let sig = |t: i64, b: &str| signer.sign_hex(t, b.as_bytes());
    let other = Signer::new(format!("whsec_not_the_receivers_{}", now).as_bytes());
    let beyond = tolerance + BEYOND_TOLERANCE;
    match tamper {
        Tamper::None => Delivery::signed(body, now, one),
        Tamper::RawBody => Delivery::signed(stripe_formatted(&body), now, one),
        Tamper::NoHeader => Delivery { body, header: None },
        Tamper::Malformed => Delivery {
            header: Some(format!("t={now}v1{};garbage", sig(now, &body))),
            body,
        },
        Tamper::NoTimestamp => Delivery {
            header: Some(format!("v1={}", sig(now, &body))),
            body,
        },
        Tamper::OnlyV0 => Delivery {
            header: Some(format!("t={now},v0={}", sig(now, &body))),
            body,
        },
        Tamper::WrongSecret => Delivery::signed(body, now, std::slice::from_ref(&other)),
        Tamper::BodyChanged => {
            let header = signature::header(now, body.as_bytes(), one);
            Delivery {
                body: change_body(&body),
                header: Some(header),
            }
        }
        Tamper::TooOld => Delivery::signed(body, now - beyond, one),
        Tamper::InFuture => Delivery::signed(body, now + beyond, one),
        Tamper::OtherTimestamp => Delivery {
            header: Some(format!("t={now},v1={}", sig(now - 30, &body))),
            body,
        },
        Tamper::RolledSecrets => Delivery::signed(body, now, &[other, signer.clone()]),
    }
}

/// The same event with one value changed, as an attacker would (`livemode` flipped, else a byte).
fn change_body(body: &str) -> String {
    for (from, to) in [
        ("\"livemode\": false", "\"livemode\": true"),
        ("\"livemode\":false", "\"livemode\":true"),
    ] {
        if body.contains(from) {
            return body.replacen(from, to, 1);
        }
    }
    format!("{body} ")
}

/// The event with what makes re-serialisers differ from Stripe's bytes: nested objects, an empty
/// object and array, non-ASCII text and escaped characters (in `metadata` and `description`).
pub fn stripe_formatted(event: &str) -> String {
    let mut v: Value = serde_json::from_str(event).expect("rendered events are JSON");
    let object = &mut v["data"]["object"];
    object["description"] =
        Value::from("Grüße aus 東京 ☃ — \"quoted\", back\\slash, tab\t, line\nbreak, </script>");
    object["metadata"] = serde_json::json!({
        "stripe_ops_nested": {"empty_object": {}, "empty_array": [], "list": [1, "zwei", {"drei": 3}]},
        "stripe_ops_note": "été, naïve, 🎉",
    });
    crate::webhook::to_wire(&v)
}

/// The same event compact and signed over those bytes: what a receiver that verifies
/// `JSON.stringify(parsed)` (or any re-serialisation) would accept.
pub fn compact_again(delivery: &Delivery, now: i64, signers: &[Signer]) -> Delivery {
    let v: Value = serde_json::from_str(&delivery.body).expect("the raw-body case sends JSON");
    Delivery::signed(crate::webhook::to_compact(&v), now, signers)
}

/// A robustness case's delivery: the odd body, validly signed at `now` (except the forged one).
pub fn robustness_delivery(oddity: Oddity, event: &str, signers: &[Signer], now: i64) -> Delivery {
    let body = robustness_body(oddity, event);
    if oddity == Oddity::BadSignature {
        let forged = Signer::new(format!("whsec_forged_{now}").as_bytes());
        return Delivery::signed(body, now, std::slice::from_ref(&forged));
    }
    Delivery::signed(body, now, signers)
}

/// A robustness case's body: `event` is a benign event rendered with a fresh id.
fn robustness_body(oddity: Oddity, event: &str) -> String {
    match oddity {
        Oddity::BadSignature => event.to_owned(),
        Oddity::UnknownType => with_field(
            &with_field(event, &["type"], Value::from(UNKNOWN_TYPE)),
            &["data", "object", "object"],
            Value::from(UNKNOWN_OBJECT),
        ),
        Oddity::EmptyBody => String::new(),
        Oddity::NotJson => "this is not JSON {\"id\": ".to_owned(),
        Oddity::Large => pad_to(event, LARGE_BODY_BYTES),
        Oddity::Unicode => with_field(
            event,
            &["data", "object", "description"],
            Value::from(
                "Grüße, 東京 ☃ 𝄞 🎉 \"quoted\" back\\slash tab\t newline\n nul\u{0} bell\u{7} </script>",
            ),
        ),
    }
}

fn with_field(event: &str, path: &[&str], value: Value) -> String {
    let mut v: Value = serde_json::from_str(event).expect("rendered events are JSON");
    let (last, parents) = path.split_last().expect("a path");
    let mut cur = &mut v;
    for p in parents {
        cur = &mut cur[*p];
    }
    cur[*last] = value;
    crate::webhook::to_wire(&v)
}

/// The event padded with a `metadata.padding` string so that the body is exactly `size` bytes.
fn pad_to(event: &str, size: usize) -> String {
    let with_empty = with_field(
        event,
        &["data", "object", "metadata", "stripe_ops_padding"],
        Value::from(""),
    );
    let missing = size.saturating_sub(with_empty.len());
    with_field(
        event,
        &["data", "object", "metadata", "stripe_ops_padding"],
        Value::from("x".repeat(missing)),
    )
}

/// What a top-up event must carry for the app to credit it (CONTRACT.md section 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub session_id: String,
    pub amount_cents: i64,
    pub org_id: String,
    pub account_id: String,
    pub payment_intent_id: String,
}

/// The `--set` operations that turn the checkout.session.completed template into `top_up`.
pub fn topup_sets(top_up: &TopUp) -> Vec<crate::webhook::fixtures::SetOp> {
    use crate::webhook::fixtures::SetOp;
    let set = |path: &str, value: Value| SetOp {
        path: path.to_owned(),
        value,
    };
    vec![
        set("data.object.id", Value::from(top_up.session_id.clone())),
        set("data.object.payment_status", Value::from("paid")),
        set("data.object.status", Value::from("complete")),
        set("data.object.amount_total", Value::from(top_up.amount_cents)),
        set(
            "data.object.amount_subtotal",
            Value::from(top_up.amount_cents),
        ),
        set("data.object.currency", Value::from("usd")),
        set(
            "data.object.payment_intent",
            Value::from(top_up.payment_intent_id.clone()),
        ),
        set(
            "data.object.metadata",
            serde_json::json!({
                "orgId": top_up.org_id,
                "accountId": top_up.account_id,
                "paymentIntentId": top_up.payment_intent_id,
            }),
        ),
    ]
}

/// The replayed body for the same-id case: the same event, delivered later (another `created`
/// and another `request.idempotency_key`), as a retry with a rebuilt body would look.
pub fn other_body(prepared: &Prepared, id: &str, created: i64) -> String {
    with_field(
        &prepared.body(id, created + 1),
        &["request"],
        serde_json::json!({ "id": null, "idempotency_key": format!("stripe-ops-{id}-again") }),
    )
}

/// The `--set` operations that make the template's object a fresh one: a new `data.object.id`
/// (and `customer`, when it is an id) with the same prefix, so that a receiver that keys on the
/// object (a subscription, a customer) sees a new one, as it would from Stripe.
pub fn fresh_object_sets(template: &Value) -> Vec<SetOp> {
    let object = &template["data"]["object"];
    ["id", "customer"]
        .iter()
        .filter_map(|field| {
            let old = object[*field].as_str()?;
            let prefix = old.rfind('_').map_or("", |at| &old[..=at]);
            (!prefix.is_empty()).then(|| SetOp {
                path: format!("data.object.{field}"),
                value: Value::from(format!("{prefix}{}", crate::secret::random_alnum(24))),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::cases::BENIGN_TYPE;
    use crate::webhook::fixtures::{Catalog, RenderOptions};

    const SECRET: &[u8] = b"whsec_unit";

    fn verdict(d: &Delivery, now: i64) -> Result<i64, signature::Rejection> {
        signature::verify(
            d.header.as_deref().unwrap_or(""),
            d.body.as_bytes(),
            &[Signer::new(SECRET)],
            300,
            now,
            signature::Window::BothWays,
        )
    }
    #[test]
    fn the_raw_body_case_is_stripe_formatted_and_its_compact_copy_is_not() {
        let p = Catalog::load(None)
            .unwrap()
            .prepare(BENIGN_TYPE, &RenderOptions::default())
            .unwrap();
        let signer = Signer::new(SECRET);
        let d = security_delivery(Tamper::RawBody, p.body("evt_raw", 9), &signer, 9, 300);
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(d.body, serde_json::to_string_pretty(&v).unwrap());
        assert!(d.body.contains("\"empty_object\": {}") && d.body.contains("東京"));
        assert!(d.body.contains(r#"\"quoted\""#) && d.body.contains(r"back\\slash"));
        assert_eq!(verdict(&d, 9), Ok(9));
        let compact = compact_again(&d, 9, std::slice::from_ref(&signer));
        assert_ne!(compact.body, d.body);
        assert_eq!(serde_json::from_str::<Value>(&compact.body).unwrap(), v);
        assert_eq!(verdict(&compact, 9), Ok(9));
    }

    #[test]
    fn security_deliveries_fail_verification_for_exactly_the_reason_named() {
        use signature::Rejection as R;
        let now = 1_700_000_000;
        let signer = Signer::new(SECRET);
        let body = r#"{"id":"evt_1","livemode":false}"#.to_owned();
        let d = |t| security_delivery(t, body.clone(), &signer, now, 300);
        assert_eq!(verdict(&d(Tamper::None), now), Ok(now));
        assert_eq!(verdict(&d(Tamper::RolledSecrets), now), Ok(now));
        assert_eq!(
            d(Tamper::RolledSecrets)
                .header
                .unwrap()
                .matches("v1=")
                .count(),
            2
        );
        assert_eq!(d(Tamper::NoHeader).header, None);
        assert!(matches!(
            verdict(&d(Tamper::Malformed), now),
            Err(R::Malformed(_))
        ));
        assert_eq!(verdict(&d(Tamper::NoTimestamp), now), Err(R::NoTimestamp));
        assert_eq!(verdict(&d(Tamper::OnlyV0), now), Err(R::NoV1));
        assert_eq!(verdict(&d(Tamper::WrongSecret), now), Err(R::NoMatch));
        assert_eq!(verdict(&d(Tamper::BodyChanged), now), Err(R::NoMatch));
        assert_ne!(d(Tamper::BodyChanged).body, body);
        assert_eq!(verdict(&d(Tamper::OtherTimestamp), now), Err(R::NoMatch));
        assert_eq!(
            verdict(&d(Tamper::TooOld), now),
            Err(R::OutOfTolerance {
                by: 60,
                future: false
            })
        );
        assert_eq!(
            verdict(&d(Tamper::InFuture), now),
            Err(R::OutOfTolerance {
                by: 60,
                future: true
            })
        );
        // Only the tolerance stands between the stale cases and acceptance.
        let stale = d(Tamper::TooOld);
        assert!(
            signature::verify(
                stale.header.as_deref().unwrap(),
                stale.body.as_bytes(),
                std::slice::from_ref(&signer),
                i64::MAX / 2,
                now,
                signature::Window::BothWays,
            )
            .is_ok()
        );
    }

    #[test]
    fn robustness_bodies() {
        let p = Catalog::load(None)
            .unwrap()
            .prepare(BENIGN_TYPE, &RenderOptions::default())
            .unwrap();
        let event = p.body("evt_r", 1);
        let unknown: Value =
            serde_json::from_str(&robustness_body(Oddity::UnknownType, &event)).unwrap();
        assert_eq!(unknown["type"], UNKNOWN_TYPE);
        assert_eq!(unknown["id"], "evt_r");
        assert_eq!(robustness_body(Oddity::EmptyBody, &event), "");
        assert!(serde_json::from_str::<Value>(&robustness_body(Oddity::NotJson, &event)).is_err());
        let large = robustness_body(Oddity::Large, &event);
        assert_eq!(large.len(), LARGE_BODY_BYTES);
        assert!(serde_json::from_str::<Value>(&large).is_ok());
        let uni = robustness_body(Oddity::Unicode, &event);
        assert!(uni.contains("東京") && uni.contains("\\u0000") && uni.contains("\\\""));
        let s = [Signer::new(SECRET)];
        let forged = robustness_delivery(Oddity::BadSignature, &event, &s, 7);
        assert_eq!(forged.body, event);
        assert_eq!(verdict(&forged, 7), Err(signature::Rejection::NoMatch));
        assert_eq!(
            verdict(&robustness_delivery(Oddity::Large, &event, &s, 7), 7),
            Ok(7)
        );
        let v: Value = serde_json::from_str(&uni).unwrap();
        assert!(
            v["data"]["object"]["description"]
                .as_str()
                .unwrap()
                .contains('𝄞')
        );
    }

    #[test]
    fn topup_events_carry_the_contract_fields() {
        let top_up = TopUp {
            session_id: "cs_1".into(),
            amount_cents: 500,
            org_id: "org_1".into(),
            account_id: "acc_1".into(),
            payment_intent_id: "pi_1".into(),
        };
        let p = Catalog::load(None)
            .unwrap()
            .prepare(
                "checkout.session.completed",
                &RenderOptions {
                    sets: topup_sets(&top_up),
                    ..Default::default()
                },
            )
            .unwrap();
        let v: Value = serde_json::from_str(&p.body("evt_t", 5)).unwrap();
        let o = &v["data"]["object"];
        assert_eq!(o["id"], "cs_1");
        assert_eq!(o["amount_total"], 500);
        assert_eq!(o["payment_status"], "paid");
        assert_eq!(o["currency"], "usd");
        assert_eq!(o["metadata"]["orgId"], "org_1");
        assert_eq!(o["metadata"]["accountId"], "acc_1");
        assert_eq!(o["metadata"]["paymentIntentId"], "pi_1");
        let again: Value = serde_json::from_str(&other_body(&p, "evt_t", 5)).unwrap();
        assert_eq!(again["id"], "evt_t");
        assert_eq!(again["data"], v["data"]);
        assert_ne!(again, v);
    }

    #[test]
    fn fresh_objects_keep_the_prefix_and_change_the_id() {
        let c = Catalog::load(None).unwrap();
        let t = c.template("customer.subscription.created").unwrap();
        let sets = fresh_object_sets(t);
        let paths: Vec<&str> = sets.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["data.object.id", "data.object.customer"]);
        let id = sets[0].value.as_str().unwrap();
        assert!(
            id.starts_with("sub_") && id != t["data"]["object"]["id"],
            "{id}"
        );
        assert!(sets[1].value.as_str().unwrap().starts_with("cus_"));
        let cs = fresh_object_sets(c.template("checkout.session.completed").unwrap());
        assert!(cs[0].value.as_str().unwrap().starts_with("cs_test_"));
    }
}
