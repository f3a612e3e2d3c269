//! Which events a target gets: event types by glob (`checkout.session.*`), and values at dotted
//! paths of the event (`data.object.metadata.siteOrigin` equal to one of the given values).
//! Both must let an event through; a target without either gets every event. Pure.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;
use wildmatch::WildMatch;

/// A target's filter.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Type globs (`*` any run of characters, `?` one); empty: every type.
    events: Vec<(String, WildMatch)>,
    /// Dotted path → the values it may have; every path must match.
    matches: BTreeMap<String, Vec<String>>,
}

impl Route {
    /// A route from the type globs and the path → values table; an empty path or value list is
    /// refused.
    pub fn new(
        events: &[String],
        matches: &BTreeMap<String, Vec<String>>,
    ) -> std::result::Result<Route, String> {
        for (path, values) in matches {
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(format!("match path {path:?} is not a dotted path"));
            }
            if values.is_empty() {
                return Err(format!("match path {path} has no values"));
            }
        }
        if let Some(empty) = events.iter().find(|e| e.trim().is_empty()) {
            return Err(format!("event type glob {empty:?} is empty"));
        }
        Ok(Route {
            events: events
                .iter()
                .map(|e| (e.clone(), WildMatch::new(e)))
                .collect(),
            matches: matches.clone(),
        })
    }

    /// Lets every event through.
    pub fn is_open(&self) -> bool {
        self.events.is_empty() && self.matches.is_empty()
    }

    /// Whether an event with this body goes to the target. A body that is not a JSON object
    /// passes an open route only. `parsed` is the body's parse shared by every route that
    /// looks at the event (a 5 KB `checkout.session.completed` costs tens of microseconds to
    /// parse; `cargo bench --bench route`).
    pub fn lets_through(&self, body: &[u8], parsed: &Parsed) -> bool {
        if self.is_open() {
            return true;
        }
        parsed
            .json(body)
            .is_some_and(|event| self.lets_through_value(event))
    }

    fn lets_through_value(&self, event: &Value) -> bool {
        let type_ok = self.events.is_empty()
            || event["type"]
                .as_str()
                .is_some_and(|t| self.events.iter().any(|(_, glob)| glob.matches(t)));
        type_ok
            && self.matches.iter().all(|(path, values)| {
                at_path(event, path).is_some_and(|v| values.iter().any(|want| is_scalar(v, want)))
            })
    }

    /// For the fingerprint that tells a reload what changed, and for `/status`.
    pub fn describe(&self) -> Value {
        serde_json::json!({
            "events": self.events.iter().map(|(e, _)| e).collect::<Vec<_>>(),
            "match": self.matches,
        })
    }
}

/// The value at a dotted path (array items by index).
fn at_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A string is compared as itself, a number or boolean as its JSON text; objects, arrays and
/// null match nothing.
fn is_scalar(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Number(n) => n.to_string() == text,
        Value::Bool(b) => b.to_string() == text,
        _ => false,
    }
}

/// An event body's JSON, parsed at most once however many routes look at it; `None` inside
/// when the body is not JSON. A cache of the body, so it never makes two events differ.
#[derive(Debug, Clone, Default)]
pub struct Parsed(OnceLock<Option<Value>>);

impl Parsed {
    fn json(&self, body: &[u8]) -> Option<&Value> {
        self.0
            .get_or_init(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

impl PartialEq for Parsed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Parsed {}

/// Parses `NAME=GLOB[,GLOB…]` (`--target-events`).
pub fn parse_events_flag(text: &str) -> std::result::Result<(String, Vec<String>), String> {
    let (name, globs) = super::targets::parse_pair(text)?;
    Ok((
        name,
        globs.split(',').map(|g| g.trim().to_owned()).collect(),
    ))
}

/// Parses `NAME=PATH=VALUE` (`--target-match`).
pub fn parse_match_flag(text: &str) -> std::result::Result<(String, String, String), String> {
    let (name, rest) = super::targets::parse_pair(text)?;
    let (path, value) = rest
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=PATH=VALUE"))?;
    Ok((name, path.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(events: &[&str], matches: &[(&str, &[&str])]) -> Route {
        Route::new(
            &events.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &matches
                .iter()
                .map(|(p, v)| (p.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        )
        .unwrap()
    }

    /// `Route::lets_through` on a body nobody has parsed yet.
    trait Lets {
        fn lets(&self, body: &[u8]) -> bool;
    }

    impl Lets for Route {
        fn lets(&self, body: &[u8]) -> bool {
            self.lets_through(body, &Parsed::default())
        }
    }

    fn event(t: &str, origin: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"type": t, "data": {"object": {"metadata": {"siteOrigin": origin},
            "amount_total": 500, "items": [{"price": "p_1"}]}}}),
        )
        .unwrap()
    }

    #[test]
    fn type_globs_and_path_values_must_both_let_an_event_through() {
        let r = route(
            &["checkout.session.*", "invoice.paid"],
            &[(
                "data.object.metadata.siteOrigin",
                &["https://james.example", "https://ana.example"],
            )],
        );
        assert!(r.lets(&event(
            "checkout.session.completed",
            json!("https://james.example")
        )));
        assert!(r.lets(&event("invoice.paid", json!("https://ana.example"))));
        assert!(!r.lets(&event(
            "invoice.payment_failed",
            json!("https://ana.example")
        )));
        assert!(!r.lets(&event("invoice.paid", json!("https://bob.example"))));
        assert!(!r.lets(&event("invoice.paid", Value::Null)));
        assert!(!r.lets(b"not json"));
    }

    #[test]
    fn numbers_booleans_and_array_items_match_by_their_text() {
        let r = route(
            &[],
            &[
                ("data.object.amount_total", &["500"]),
                ("data.object.items.0.price", &["p_1"]),
            ],
        );
        assert!(r.lets(&event("x", json!("a"))));
        let r = route(&[], &[("data.object.amount_total", &["501"])]);
        assert!(!r.lets(&event("x", json!("a"))));
    }

    #[test]
    fn an_open_route_lets_everything_through_even_junk() {
        let r = Route::default();
        assert!(r.is_open() && r.lets(b"not json"));
        let parsed = Parsed::default();
        assert!(r.lets_through(b"{}", &parsed) && parsed.0.get().is_none());
        assert!(route(&["*"], &[]).lets(&event("v2.core.event_destination.ping", json!(1))));
    }

    #[test]
    fn bad_routes_and_flags_are_refused() {
        assert!(Route::new(&[String::new()], &BTreeMap::new()).is_err());
        let m = BTreeMap::from([("a..b".to_owned(), vec!["x".to_owned()])]);
        assert!(Route::new(&[], &m).is_err());
        let m = BTreeMap::from([("a.b".to_owned(), vec![])]);
        assert!(Route::new(&[], &m).is_err());
        assert_eq!(
            parse_events_flag("james=checkout.session.*, invoice.paid").unwrap(),
            (
                "james".into(),
                vec!["checkout.session.*".into(), "invoice.paid".into()]
            )
        );
        assert_eq!(
            parse_match_flag("james=data.object.metadata.siteOrigin=https://j.example/?a=b")
                .unwrap(),
            (
                "james".into(),
                "data.object.metadata.siteOrigin".into(),
                "https://j.example/?a=b".into()
            )
        );
        assert!(parse_match_flag("james=nopath").is_err());
    }
}
