//! Event templates: embedded from `fixtures/`, optionally extended or overridden from
//! `--fixtures-dir`, rendered with a fresh id and `created`, `--set` overrides and `--account`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// The available templates by event type, parsed.
pub struct Catalog {
    templates: BTreeMap<String, Value>,
}

impl Catalog {
    /// The embedded templates, plus (overriding by type) every `*.json` in `extra_dir`.
    pub fn load(extra_dir: Option<&Path>) -> Result<Self> {
        let mut templates = BTreeMap::new();
        for (event_type, text) in embedded::EMBEDDED {
            let value = serde_json::from_str(text).expect("embedded fixtures are valid JSON");
            templates.insert((*event_type).to_owned(), value);
        }
        if let Some(dir) = extra_dir {
            load_dir(dir, &mut templates)?;
        }
        Ok(Self { templates })
    }

    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    pub fn template(&self, event_type: &str) -> Result<&Value> {
        self.templates.get(event_type).ok_or_else(|| {
            let close = close_matches(event_type, self.types());
            let hint = if close.is_empty() {
                "run `stripe-ops events list` for the types".to_owned()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            Error::usage(format!("unknown event type {event_type:?}; {hint}"))
        })
    }

    /// Applies the options that stay the same for every event of a run, and returns a template
    /// that renders a fresh event cheaply.
    pub fn prepare(&self, event_type: &str, opts: &RenderOptions) -> Result<Prepared> {
        let mut value = self.template(event_type)?.clone();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("type".into(), Value::String(event_type.to_owned()));
        }
        for set in &opts.sets {
            set_path(&mut value, &set.path, set.value.clone(), opts.create_path)?;
        }
        if let Some(account) = &opts.account {
            // A snapshot event names the connected account in `account`; a thin one in
            // `context` (Stripe's event destinations docs).
            let (anchor, key) = if is_thin(&value) {
                ("livemode", "context")
            } else {
                ("api_version", "account")
            };
            insert_after(&mut value, anchor, key, Value::String(account.clone()));
        }
        Prepared::new(value, event_type)
    }

    /// Whether `event_type`'s template is a thin event (`object: "v2.core.event"`), which only
    /// event destinations with the thin payload receive.
    pub fn is_thin(&self, event_type: &str) -> bool {
        self.template(event_type).is_ok_and(is_thin)
    }
}

fn load_dir(dir: &Path, templates: &mut BTreeMap<String, Value>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("cannot read fixtures dir {}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::usage(format!("reading {}: {e}", dir.display())))?
            .path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = crate::files::read_text(&path, "template")?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::usage(format!("{} is not valid JSON: {e}", path.display())))?;
        let event_type = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        templates.insert(event_type, value);
    }
    Ok(())
}

fn close_matches<'a>(wanted: &str, types: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = types
        .map(|t| (strsim::jaro_winkler(wanted, t), t))
        .filter(|(score, t)| *score > 0.8 || t.contains(wanted))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, t)| t).collect()
}

/// One `--set PATH=VALUE`: the value parses as JSON, else it is a string.
#[derive(Debug, Clone)]
pub struct SetOp {
    pub path: String,
    pub value: Value,
}

impl std::str::FromStr for SetOp {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (path, raw) = s.split_once('=').ok_or("expected PATH=VALUE")?;
        if path.is_empty() {
            return Err("empty PATH in PATH=VALUE".into());
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        Ok(SetOp {
            path: path.to_owned(),
            value,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub sets: Vec<SetOp>,
    pub create_path: bool,
    pub account: Option<String>,
}

/// Sets a dotted path (`data.object.metadata.orgId`; array indexes as numbers). Without
/// `create`, every segment must already exist.
fn set_path(root: &mut Value, path: &str, value: Value, create: bool) -> Result<()> {
    let missing = || {
        Error::usage(if create {
            format!(
                "--set path {path:?} cannot be created: it goes through a value that is not an object (or an array index that does not exist)"
            )
        } else {
            format!(
                "--set path {path:?} does not exist in the template (add --create-path to create it)"
            )
        })
    };
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments
        .split_last()
        .expect("split yields one segment at least");
    let mut cur = root;
    for seg in parents {
        cur = match cur {
            Value::Object(map) => {
                if !map.contains_key(*seg) {
                    if !create {
                        return Err(missing());
                    }
                    map.insert((*seg).to_owned(), Value::Object(Map::new()));
                }
                map.get_mut(*seg).expect("just ensured")
            }
            Value::Array(items) => seg
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(missing)?,
            Value::Null if create => {
                *cur = Value::Object(Map::new());
                let Value::Object(map) = cur else {
                    unreachable!()
                };
                map.entry((*seg).to_owned())
                    .or_insert(Value::Object(Map::new()))
            }
            _ => return Err(missing()),
        };
    }
    match cur {
        Value::Object(map) => {
            if !create && !map.contains_key(*last) {
                return Err(missing());
            }
            map.insert((*last).to_owned(), value);
        }
        Value::Array(items) => {
            let slot = last
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(missing)?;
            *slot = value;
        }
        _ => return Err(missing()),
    }
    Ok(())
}

/// Inserts `key` right after `after` in an object, keeping Stripe's field order.
fn insert_after(root: &mut Value, after: &str, key: &str, value: Value) {
    let Some(map) = root.as_object_mut() else {
        return;
    };
    let old = std::mem::take(map);
    let had_anchor = old.contains_key(after);
    for (k, v) in old {
        let is_anchor = k == after;
        if k != key {
            map.insert(k, v);
        }
        if is_anchor {
            map.insert(key.to_owned(), value.clone());
        }
    }
    if !had_anchor {
        map.insert(key.to_owned(), value);
    }
}

/// The `object` of a thin event (event destinations, API v2).
pub const THIN_OBJECT: &str = "v2.core.event";

fn is_thin(event: &Value) -> bool {
    event["object"] == THIN_OBJECT
}

/// A template serialized once in Stripe's wire format, with holes for `id` and `created`:
/// rendering an event is two string concatenations, which keeps load mode cheap.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event_type: String,
    head: String,
    middle: String,
    tail: String,
    id_first: bool,
    /// `created` is an RFC 3339 timestamp in a thin event, unix seconds in a snapshot event.
    thin: bool,
}

const ID_HOLE: &str = "\u{1}stripe-ops-id\u{1}";
const CREATED_HOLE: &str = "\u{1}stripe-ops-created\u{1}";

impl Prepared {
    fn new(mut value: Value, event_type: &str) -> Result<Self> {
        let thin = is_thin(&value);
        let obj = value
            .as_object_mut()
            .ok_or_else(|| Error::usage(format!("template {event_type} is not a JSON object")))?;
        obj.insert("id".into(), Value::String(ID_HOLE.into()));
        obj.insert("created".into(), Value::String(CREATED_HOLE.into()));
        let text = super::to_wire(&value);
        let id_marker = serde_json::to_string(ID_HOLE).unwrap();
        let created_marker = serde_json::to_string(CREATED_HOLE).unwrap();
        let id_at = text.find(&id_marker).expect("id hole present");
        let created_at = text.find(&created_marker).expect("created hole present");
        let (first, first_len, second, second_len) = if id_at < created_at {
            (id_at, id_marker.len(), created_at, created_marker.len())
        } else {
            (created_at, created_marker.len(), id_at, id_marker.len())
        };
        Ok(Self {
            event_type: event_type.to_owned(),
            head: text[..first].to_owned(),
            middle: text[first + first_len..second].to_owned(),
            tail: text[second + second_len..].to_owned(),
            id_first: id_at < created_at,
            thin,
        })
    }

    /// The exact body of one event.
    pub fn body(&self, id: &str, created: i64) -> String {
        let mut num = itoa::Buffer::new();
        let stamp;
        let created = if self.thin {
            stamp = thin_created(created);
            stamp.as_str()
        } else {
            num.format(created)
        };
        let id_json = serde_json::to_string(id).expect("strings serialize");
        let (a, b) = if self.id_first {
            (id_json.as_str(), created)
        } else {
            (created, id_json.as_str())
        };
        let mut out =
            String::with_capacity(self.head.len() + self.middle.len() + self.tail.len() + 64);
        out.push_str(&self.head);
        out.push_str(a);
        out.push_str(&self.middle);
        out.push_str(b);
        out.push_str(&self.tail);
        out
    }
}

/// `created` of a thin event: `"2024-09-17T06:20:52.000Z"`, as Stripe sends it.
fn thin_created(unix: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    let at =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("\"{}\"", at.format(format).expect("a fixed format"))
}

/// A fresh Stripe-looking event id: `evt_` and 24 random alphanumerics.
pub fn new_event_id() -> String {
    format!("evt_{}", crate::secret::random_alnum(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(None).unwrap()
    }

    #[test]
    fn every_required_type_is_embedded_as_a_complete_event() {
        let c = catalog();
        for t in [
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "charge.succeeded",
            "charge.refunded",
            "charge.dispute.created",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "customer.created",
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "account.updated",
        ] {
            let v = c.template(t).unwrap();
            assert_eq!(v["object"], "event", "{t}");
            assert_eq!(v["type"], t);
            assert_eq!(v["livemode"], false);
            assert!(v["api_version"].is_string() && v["request"].is_object());
            assert!(v["pending_webhooks"].is_number());
            assert!(v["data"]["object"]["object"].is_string(), "{t}");
        }
    }

    #[test]
    fn thin_events_have_a_timestamp_and_name_the_account_in_context() {
        let c = catalog();
        for t in [
            "v2.core.event_destination.ping",
            "v1.billing.meter.error_report_triggered",
        ] {
            assert!(c.is_thin(t), "{t}");
            let opts = RenderOptions {
                account: Some("acct_1".into()),
                ..Default::default()
            };
            let body = c.prepare(t, &opts).unwrap().body("evt_1", 1_726_554_052);
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["created"], "2024-09-17T06:20:52.000Z");
            assert_eq!(v["object"], "v2.core.event");
            assert_eq!(v["context"], "acct_1");
            assert!(v.get("account").is_none());
            assert!(
                v["related_object"]["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("/v")
            );
        }
        assert!(!c.is_thin("checkout.session.completed"));
    }

    #[test]
    fn render_fills_id_created_sets_and_account_in_order() {
        let opts = RenderOptions {
            sets: vec![
                "data.object.amount_total=1234".parse().unwrap(),
                "data.object.metadata.orgId=org_1".parse().unwrap(),
            ],
            create_path: false,
            account: Some("acct_123".into()),
        };
        let p = catalog()
            .prepare("checkout.session.completed", &opts)
            .unwrap();
        let body = p.body("evt_x", 42);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "evt_x");
        assert_eq!(v["created"], 42);
        assert_eq!(v["account"], "acct_123");
        assert_eq!(v["data"]["object"]["amount_total"], 1234);
        assert_eq!(v["data"]["object"]["metadata"]["orgId"], "org_1");
        assert!(
            body.starts_with(
                "{\n  \"id\": \"evt_x\",\n  \"object\": \"event\",\n  \"api_version\": "
            ),
            "{body}"
        );
        let reprinted = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(
            body, reprinted,
            "the body is its own two-space pretty print"
        );
    }

    #[test]
    fn set_rejects_unknown_paths_unless_create() {
        let mut v: Value = serde_json::json!({"a": {"b": 1}, "l": [1, 2]});
        let e = set_path(&mut v, "a.c", Value::Null, false).unwrap_err();
        assert!(e.message().contains("\"a.c\""));
        set_path(&mut v, "a.c.d", Value::from(2), true).unwrap();
        let e = set_path(&mut v, "a.b.x", Value::Null, true).unwrap_err();
        assert!(
            !e.message().contains("add --create-path"),
            "{}",
            e.message()
        );
        assert_eq!(v["a"]["c"]["d"], 2);
        set_path(&mut v, "l.1", Value::from("x"), false).unwrap();
        assert_eq!(v["l"][1], "x");
        assert!(set_path(&mut v, "l.5", Value::Null, false).is_err());
    }

    #[test]
    fn no_set_path_makes_set_panic() {
        let template = catalog().template("invoice.paid").unwrap().clone();
        let alphabet = [
            "data", "object", "lines", "0", "99", ".", "..", "metadata", "x", "", "-1",
        ];
        let mut strings = crate::fuzz::Strings::new(0x5e7_0001);
        for _ in 0..3000 {
            let path = strings.drawn_from(&alphabet, 6);
            for create in [false, true] {
                let mut v = template.clone();
                let _ = set_path(&mut v, &path, Value::from(1), create);
            }
            let _ = format!("{path}=1").parse::<SetOp>();
        }
    }

    #[test]
    fn set_values_parse_as_json_else_string() {
        let s: SetOp = "x=500".parse().unwrap();
        assert_eq!(s.value, Value::from(500));
        let s: SetOp = "x=org_1".parse().unwrap();
        assert_eq!(s.value, Value::from("org_1"));
        let s: SetOp = "x={\"k\":true}".parse().unwrap();
        assert_eq!(s.value["k"], true);
    }

    #[test]
    fn unknown_type_lists_close_matches() {
        let e = catalog().template("checkout.session.complete").unwrap_err();
        assert!(
            e.message().contains("checkout.session.completed"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn ids_are_fresh() {
        let a = new_event_id();
        assert!(a.starts_with("evt_") && a.len() == 28);
        assert_ne!(a, new_event_id());
    }
}
