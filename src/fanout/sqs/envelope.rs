//! How an SQS message's body carries a Stripe event: a raw Stripe event, an EventBridge event
//! around one, or poison. Read with borrowing serde visitors, no `serde_json::Value` tree: one
//! walk over the body reads its top-level fields and keeps its `detail` as it came (a
//! `&RawValue`); one over the detail reads the event's fields and re-writes it in Stripe's wire
//! format as it goes. A raw event's bytes are delivered as they came. The verdicts and bytes
//! are those of parsing the body into a `Value` (as this module did before; its tests hold
//! that version as the reference): the same JSON accepted, the same fields read (the last of a
//! repeated key), the same pretty-printed detail.
//!
//! The EventBridge event, as a rule's SQS target puts it in the message body: the envelope's
//! `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`, `resources` and
//! `detail`, a JSON object (AWS's "AWS service event metadata", EventBridge User Guide,
//! https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html); for a
//! Stripe event destination `source` is its partner event source (`aws.partner/stripe.com/ed_…`)
//! and `detail` the event, snapshot or thin (Stripe's "Send events to Amazon EventBridge",
//! https://docs.stripe.com/event-destinations/eventbridge).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::value::RawValue;

/// How a message's body carries a Stripe event.
#[derive(Debug, PartialEq)]
pub enum Envelope {
    /// The bytes to deliver, the event's id and type, and which envelope it came in.
    Event {
        body: Vec<u8>,
        id: String,
        event_type: String,
        kind: &'static str,
    },
    Poison(String),
}

/// Reads a message body. An EventBridge event from a Stripe partner event source (`source`
/// `aws.partner/stripe.com…` and a `detail-type`): its `detail`, delivered in Stripe's wire
/// format. Or a raw Stripe event (`object` `event` or `v2.core.event`), whose bytes are
/// delivered unchanged.
pub fn open(body: &str) -> Envelope {
    let Ok(top) = walk(body, Walk::Body) else {
        return Envelope::Poison("not JSON".into());
    };
    let from_eventbridge = top
        .source
        .as_deref()
        .is_some_and(|s| s.starts_with("aws.partner/stripe.com"))
        && top.detail_type;
    // The detail is part of the body: JSON or not, whichever envelope this is.
    let how = if from_eventbridge {
        Walk::Wire
    } else {
        Walk::Check
    };
    let detail = match top.detail.map(|raw| walk(raw.get(), how).map(|d| (raw, d))) {
        Some(Err(_)) => return Envelope::Poison("not JSON".into()),
        Some(Ok(detail)) => Some(detail),
        None => None,
    };
    let no_fields = Fields::default();
    let (kind, fields) = match (from_eventbridge, &detail) {
        (false, _) => ("raw", &top.fields),
        (true, Some((_, detail))) => ("eventbridge", &detail.fields),
        (true, None) => ("eventbridge", &no_fields),
    };
    let (Some(id), Some(event_type)) = (&fields.id, &fields.event_type) else {
        return Envelope::Poison(format!("{kind}: not a Stripe event (no id or type)"));
    };
    if !matches!(fields.object.as_deref(), Some("event" | "v2.core.event")) {
        return Envelope::Poison(format!("{kind}: not a Stripe event (object is not event)"));
    }
    let (id, event_type) = (id.to_string(), event_type.to_string());
    let body = match detail {
        Some((_, detail)) if from_eventbridge && !detail.repeated_key => detail.wire,
        // A repeated key: the wire format keeps the last value in the first one's place, as a
        // `Value` does; rare enough to go through one.
        Some((raw, _)) if from_eventbridge => match serde_json::from_str(raw.get()) {
            Ok(value) => crate::webhook::to_wire(&value).into_bytes(),
            Err(_) => return Envelope::Poison("not JSON".into()),
        },
        _ => body.as_bytes().to_vec(),
    };
    Envelope::Event {
        body,
        id,
        event_type,
        kind,
    }
}

/// What a walk does besides checking the JSON as `serde_json::from_str::<Value>` would.
#[derive(Clone, Copy, PartialEq)]
enum Walk {
    /// The message body: its top-level fields read, its `detail` kept as it is, for a walk
    /// of its own.
    Body,
    /// An EventBridge `detail`, nested one level in the body: its top-level fields read, and
    /// the whole re-written in Stripe's wire format.
    Wire,
    /// A `detail` that is not delivered: only checked.
    Check,
}

/// The top-level fields `open` decides on, each the last of its key (a string, else none).
#[derive(Default)]
struct Fields<'de> {
    id: Option<Cow<'de, str>>,
    event_type: Option<Cow<'de, str>>,
    object: Option<Cow<'de, str>>,
}

#[derive(Default)]
struct Walked<'de> {
    fields: Fields<'de>,
    /// (Body) `source`, whether there is a `detail-type`, and `detail`.
    source: Option<Cow<'de, str>>,
    detail_type: bool,
    detail: Option<&'de RawValue>,
    /// (Wire) the text in Stripe's wire format: `serde_json::to_string_pretty` of its `Value`.
    wire: Vec<u8>,
    /// (Wire) an object repeats a key: `wire` holds both.
    repeated_key: bool,
}

/// serde_json's nesting limit: its deserializer refuses the 128th open array or object.
const MAX_NESTING: usize = 128;

fn walk(text: &str, how: Walk) -> Result<Walked<'_>, serde_json::Error> {
    let mut walker = Walker {
        how,
        // A detail is one level into the body: the limit counts from there.
        nesting: usize::from(how != Walk::Body),
        formatter: PrettyFormatter::new(),
        keys: Vec::new(),
        walked: Walked {
            wire: Vec::with_capacity(if how == Walk::Wire { text.len() * 2 } else { 0 }),
            ..Walked::default()
        },
    };
    let mut de = serde_json::Deserializer::from_str(text);
    Node {
        walker: &mut walker,
        top: true,
        keep: false,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(walker.walked)
}

struct Walker<'de> {
    how: Walk,
    /// Arrays and objects open around the node being walked (counting the body's for a detail).
    nesting: usize,
    formatter: PrettyFormatter<'static>,
    /// (Wire) the keys of the objects open, to find a repeated one.
    keys: Vec<Cow<'de, str>>,
    walked: Walked<'de>,
}

impl Walker<'_> {
    fn writes(&self) -> bool {
        self.how == Walk::Wire
    }

    /// Writes through the formatter when re-writing (writing to a `Vec` cannot fail).
    fn write(
        &mut self,
        f: impl FnOnce(&mut PrettyFormatter<'static>, &mut Vec<u8>) -> std::io::Result<()>,
    ) {
        if self.writes() {
            f(&mut self.formatter, &mut self.walked.wire).expect("a Vec takes every write");
        }
    }

    fn write_str(&mut self, s: &str) {
        if self.writes() {
            serde_json::to_writer(&mut self.walked.wire, s).expect("a Vec takes every write");
        }
    }

    fn open<E: de::Error>(&mut self) -> Result<(), E> {
        self.nesting += 1;
        if self.nesting >= MAX_NESTING {
            return Err(E::custom("recursion limit exceeded"));
        }
        Ok(())
    }
}

/// One JSON value to walk (re-written when the walk writes). `keep`: a string is returned.
struct Node<'w, 'de> {
    walker: &'w mut Walker<'de>,
    /// The text's own top level (its fields are read).
    top: bool,
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, 'de> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        self.walker.write(|f, w| f.write_null(w));
        Ok(None)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        self.walker.write(|f, w| f.write_bool(w, v));
        Ok(None)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        self.walker.write(|f, w| f.write_i64(w, v));
        Ok(None)
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        self.walker.write(|f, w| f.write_u64(w, v));
        Ok(None)
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // (A parsed number is finite: serde_json refuses one out of f64's range.)
        self.walker.write(|f, w| f.write_f64(w, v));
        Ok(None)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        self.walker.write_str(v);
        Ok(self.keep.then_some(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        self.walker.write_str(v);
        Ok(self.keep.then(|| Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let walker = self.walker;
        walker.open()?;
        walker.write(|f, w| f.begin_array(w));
        let mut first = true;
        loop {
            // The separator goes before the element (as serde_json writes it), taken back when
            // asking for one finds the `]`.
            let at = walker.walked.wire.len();
            walker.write(|f, w| f.begin_array_value(w, first));
            let node = Node {
                walker: &mut *walker,
                top: false,
                keep: false,
            };
            if seq.next_element_seed(node)?.is_none() {
                walker.walked.wire.truncate(at);
                break;
            }
            walker.write(|f, w| f.end_array_value(w));
            first = false;
        }
        walker.write(|f, w| f.end_array(w));
        walker.nesting -= 1;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (walker, top) = (self.walker, self.top);
        walker.open()?;
        walker.write(|f, w| f.begin_object(w));
        let start = walker.keys.len();
        let mut first = true;
        while let Some(key) = map.next_key_seed(Key)? {
            walker.write(|f, w| f.begin_object_key(w, first));
            walker.write_str(&key);
            walker.write(|f, w| f.end_object_key(w));
            walker.write(|f, w| f.begin_object_value(w));
            first = false;
            let wanted = top && matches!(&*key, "id" | "type" | "object" | "source");
            if top && walker.how == Walk::Body && &*key == "detail" {
                let detail: &'de RawValue = map.next_value()?;
                if let Some(earlier) = walker.walked.detail.replace(detail) {
                    // The last `detail` counts; an earlier one must still be JSON.
                    walk(earlier.get(), Walk::Check).map_err(de::Error::custom)?;
                }
            } else {
                let node = Node {
                    walker: &mut *walker,
                    top: false,
                    keep: wanted,
                };
                let value = map.next_value_seed(node)?;
                if wanted {
                    walker.keep(&key, value);
                }
            }
            if top && &*key == "detail-type" {
                walker.walked.detail_type = true;
            }
            walker.write(|f, w| f.end_object_value(w));
            if walker.writes() {
                walker.keys.push(key);
            }
        }
        walker.write(|f, w| f.end_object(w));
        if walker.writes() {
            let keys = &mut walker.keys[start..];
            keys.sort_unstable();
            if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                walker.walked.repeated_key = true;
            }
            walker.keys.truncate(start);
        }
        walker.nesting -= 1;
        Ok(None)
    }
}

impl<'de> Walker<'de> {
    /// A top-level field's value: the last of its key counts, a string or nothing.
    fn keep(&mut self, key: &str, value: Option<Cow<'de, str>>) {
        let fields = &mut self.walked.fields;
        match key {
            "id" => fields.id = value,
            "type" => fields.event_type = value,
            "object" => fields.object = value,
            _ => self.walked.source = value,
        }
    }
}

/// An object's key, borrowed from the text unless it holds an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const EVENT: &str =
        r#"{"id": "evt_1", "object": "event", "type": "customer.created", "data": {"object": {}}}"#;

    #[test]
    fn a_raw_stripe_event_is_delivered_byte_for_byte() {
        match open(EVENT) {
            Envelope::Event {
                body,
                id,
                event_type,
                kind,
            } => {
                assert_eq!(body, EVENT.as_bytes());
                assert_eq!(
                    (id.as_str(), event_type.as_str(), kind),
                    ("evt_1", "customer.created", "raw")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_eventbridge_event_delivers_its_detail_in_stripes_wire_format() {
        let detail: Value = serde_json::from_str(EVENT).unwrap();
        let envelope = json!({
            "version": "0", "id": "6a7e8feb", "detail-type": "customer.created",
            "source": "aws.partner/stripe.com/ed_test_61Rm", "account": "123456789012",
            "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": detail,
        });
        match open(&envelope.to_string()) {
            Envelope::Event { body, id, kind, .. } => {
                assert_eq!(body, crate::webhook::to_wire(&detail).into_bytes());
                assert_eq!((id.as_str(), kind), ("evt_1", "eventbridge"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn anything_else_is_poison() {
        for body in [
            "not json",
            "[]",
            r#"{"id": "x", "type": "t", "object": "customer"}"#,
            r#"{"source": "aws.partner/stripe.com/ed_1", "detail-type": "x", "detail": {"id": "evt_1"}}"#,
            r#"{"source": "my.app", "detail-type": "x", "detail": {"id": "evt_1", "type": "t", "object": "event"}}"#,
        ] {
            assert!(matches!(open(body), Envelope::Poison(_)), "{body}");
        }
    }

    /// `open` as it was, through a `serde_json::Value`: what the walk must agree with.
    fn open_by_value(body: &str) -> Envelope {
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return Envelope::Poison("not JSON".into());
        };
        let from_eventbridge = value["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("aws.partner/stripe.com"))
            && value.get("detail-type").is_some();
        let (event, kind) = if from_eventbridge {
            (&value["detail"], "eventbridge")
        } else {
            (&value, "raw")
        };
        let is_event = matches!(event["object"].as_str(), Some("event" | "v2.core.event"));
        let (Some(id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str()) else {
            return Envelope::Poison(format!("{kind}: not a Stripe event (no id or type)"));
        };
        if !is_event {
            return Envelope::Poison(format!("{kind}: not a Stripe event (object is not event)"));
        }
        let body = if kind == "raw" {
            body.as_bytes().to_vec()
        } else {
            crate::webhook::to_wire(event).into_bytes()
        };
        Envelope::Event {
            body,
            id: id.to_owned(),
            event_type: event_type.to_owned(),
            kind,
        }
    }

    fn eventbridge(detail: &str) -> String {
        format!(
            r#"{{"version": "0", "id": "6a7e8feb", "detail-type": "t", "source": "aws.partner/stripe.com/ed_test_61Rm", "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {detail}}}"#
        )
    }

    fn same_as_through_a_value(body: &str) -> Envelope {
        let opened = open(body);
        assert_eq!(opened, open_by_value(body), "{body}");
        opened
    }

    #[test]
    fn every_embedded_stripe_event_reads_as_through_a_value_raw_and_in_eventbridge() {
        let catalog = crate::webhook::fixtures::Catalog::load(None).unwrap();
        let mut seen = 0;
        for name in catalog.types().map(str::to_owned).collect::<Vec<_>>() {
            let mut event = catalog.template(&name).unwrap().clone();
            event["id"] = json!("evt_1");
            for text in [
                event.to_string(),
                serde_json::to_string_pretty(&event).unwrap(),
            ] {
                for body in [text.clone(), eventbridge(&text)] {
                    assert!(
                        matches!(same_as_through_a_value(&body), Envelope::Event { .. }),
                        "{name}"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 100, "{seen}");
    }

    #[test]
    fn a_body_that_is_a_json_string_is_poison_even_holding_an_event() {
        let quoted = serde_json::to_string(EVENT).unwrap();
        assert_eq!(
            same_as_through_a_value(&quoted),
            Envelope::Poison("raw: not a Stripe event (no id or type)".into())
        );
        assert_eq!(
            same_as_through_a_value(&eventbridge(&quoted)),
            Envelope::Poison("eventbridge: not a Stripe event (no id or type)".into())
        );
    }

    #[test]
    fn unicode_escapes_numbers_and_whitespace_in_a_detail_are_written_as_a_value_writes_them() {
        let detail = "{ \"id\" :\t\"evt_\\u00e9\" ,\r\n \"object\": \"ev\\u0065nt\", \"type\": \"t\",
            \"data\": {\"object\": {\"name\": \"\\ud83d\\ude00 \\/ \\\" \\\\ \\b\\f\\n\\r\\t \\u0001 \\u001f é\",
            \"k\\u00e9y\": [ ], \"o\": { }, \"n\": [1.50, 1e2, -0, -0.0, 1E-7, 18446744073709551615,
            18446744073709551616, -9223372036854775808, -9223372036854775809, 5e-324],
            \"b\": [true, false, null, [[]], {\"a\": {}}]}} }";
        match same_as_through_a_value(&eventbridge(detail)) {
            Envelope::Event { body, id, .. } => {
                assert_eq!(id, "evt_é");
                let text = String::from_utf8(body).unwrap();
                assert!(
                    text.contains("\"name\": \"😀 / \\\" \\\\ \\b\\f\\n\\r\\t \\u0001 \\u001f é\""),
                    "{text}"
                );
                assert!(text.contains("\"kéy\": [],\n"), "{text}");
                assert!(text.contains("1.5,\n"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // Whitespace around a raw event is delivered as it came.
        let spaced = format!(" \n\t{EVENT}\r\n ");
        match same_as_through_a_value(&spaced) {
            Envelope::Event { body, .. } => assert_eq!(body, spaced.as_bytes()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_a_value_refuses_is_not_json_wherever_it_is() {
        let event = |extra: &str| {
            format!(r#"{{"id": "evt_1", "object": "event", "type": "t", "x": {extra}}}"#)
        };
        for bad in [
            "1e400",
            "-1e400",
            r#""\ud800""#,
            r#""\udc00x""#,
            "\"\u{1}\"",
            "[1,]",
            "01",
            "NaN",
            "\"\\x\"",
        ] {
            for body in [
                event(bad),
                eventbridge(&event(bad)),
                format!("{} ", event("1")) + bad,
            ] {
                assert_eq!(
                    same_as_through_a_value(&body),
                    Envelope::Poison("not JSON".into()),
                    "{body}"
                );
            }
        }
        // In a `detail` that is not delivered, and in a `detail` a later one replaces.
        let not_delivered = format!(
            r#"{{"id": "evt_1", "object": "event", "type": "t", "detail": {}}}"#,
            event("1e400")
        );
        let replaced = eventbridge(&format!("{}, \"detail\": {EVENT}", event("1e400")));
        for body in [not_delivered, replaced] {
            assert_eq!(
                same_as_through_a_value(&body),
                Envelope::Poison("not JSON".into()),
                "{body}"
            );
        }
    }

    #[test]
    fn nesting_is_refused_at_serde_jsons_limit_in_the_body_and_in_a_detail() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for n in [125, 126, 127, 128] {
            for body in [
                format!(
                    r#"{{"id": "evt_1", "object": "event", "type": "t", "x": {}}}"#,
                    nested(n)
                ),
                eventbridge(&format!(
                    r#"{{"id": "evt_1", "object": "event", "type": "t", "x": {}}}"#,
                    nested(n)
                )),
            ] {
                same_as_through_a_value(&body);
            }
        }
        // The body, the detail and 125 arrays: 127 levels, serde_json's most.
        let in_detail = |n: usize| {
            open(&eventbridge(&format!(
                r#"{{"id": "evt_1", "object": "event", "type": "t", "x": {}}}"#,
                nested(n)
            )))
        };
        assert!(matches!(in_detail(125), Envelope::Event { .. }));
        assert_eq!(in_detail(126), Envelope::Poison("not JSON".into()));
    }

    #[test]
    fn a_repeated_key_counts_its_last_value_as_through_a_value() {
        for body in [
            r#"{"id": "evt_0", "id": "evt_1", "object": "event", "type": "t"}"#.to_owned(),
            r#"{"id": "evt_1", "object": "event", "type": "t", "type": 5}"#.to_owned(),
            r#"{"id": "evt_1", "object": "customer", "type": "t", "object": "event"}"#.to_owned(),
            eventbridge(
                r#"{"id": "evt_1", "object": "event", "type": "t", "data": {"a": 1, "b": 2, "a": 3}}"#,
            ),
            eventbridge(r#"{"id": "evt_0", "object": "event", "type": "t", "id": "evt_1"}"#),
            format!(
                r#"{{"source": "aws.partner/stripe.com/ed_1", "detail-type": null, "detail": 1, "detail": {EVENT}}}"#
            ),
            format!(
                r#"{{"source": "aws.partner/stripe.com/ed_1", "detail-type": "t", "detail": {EVENT}, "detail": 1}}"#
            ),
            format!(
                r#"{{"source": "aws.partner/stripe.com/ed_1", "source": 1, "detail-type": "t", "detail": {EVENT}}}"#
            ),
        ] {
            same_as_through_a_value(&body);
        }
    }

    #[test]
    fn envelopes_of_other_shapes_read_as_through_a_value() {
        let thin = r#"{"id": "evt_test_65R", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered", "created": "2026-01-01T00:00:00.000Z", "related_object": {"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters/mtr_1"}}"#;
        for body in [
            eventbridge(thin),
            eventbridge("null"),
            eventbridge("{}"),
            eventbridge("[]"),
            r#"{"source": "aws.partner/stripe.com/ed_1", "detail": {"id": "evt_1", "object": "event", "type": "t"}}"#.to_owned(),
            format!(r#"{{"source": "aws.partner/stripe.com", "detail-type": "t", "detail": {EVENT}}}"#),
            format!(r#"{{"source": ["aws.partner/stripe.com/ed_1"], "detail-type": "t", "detail": {EVENT}}}"#),
            format!(r#"{{"source": "aws.partner/stripe.co", "detail-type": "t", "detail": {EVENT}, "id": "evt_2", "object": "event", "type": "x"}}"#),
            r#"{"source": "aws.partner/stripe.com/ed_1", "detail-type": "t"}"#.to_owned(),
            "{}".to_owned(), "null".to_owned(), "1".to_owned(), "".to_owned(), " ".to_owned(),
            r#"{"id": 1, "object": "event", "type": "t"}"#.to_owned(),
            r#"{"id": "evt_1", "object": "event"}"#.to_owned(),
            r#"{"id": "evt_1", "object": null, "type": "t"}"#.to_owned(),
            r#"{"id": "evt_1", "obj\u0065ct": "event", "type": "t"}"#.to_owned(),
        ] {
            same_as_through_a_value(&body);
        }
    }
}
