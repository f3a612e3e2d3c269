//! The resource engine: Stripe's API for every resource in `resources.toml`, from data.
//!
//! Two inputs, both embedded: the table `resources.toml` (which resources the sandbox serves and
//! what it decides about them: defaults, the parent of a nested resource, the actions it
//! serves), and what stripe-node declares about each one, generated into fixtures/api/ by
//! fixtures/generate.py (paths, parameter schemas, the object's template, expandable fields,
//! its event types). From them the engine routes a request to an operation, checks its
//! parameters (Stripe's 400s), and runs create / retrieve / update / list / delete the same way
//! for every resource, emitting `<object>.created|updated|deleted`. Code exists only where
//! Stripe has behaviour: a `Behaviour` (behaviour/) hooks into an operation or serves an action
//! (`cancel`, `capture`, …). docs/SANDBOX.md says how to add a resource, a behaviour, an event.
//!
//! - `call`: the request extractor (auth, parameters, expand, idempotency key, scope)
//! - `schema`: parameters against stripe-node's declarations
//! - `store`: the objects, in creation order, and the sandbox's private notes on them
//! - `ops`: `Ctx` (what a behaviour sees), the `Behaviour` trait, the generic operations
//! - `apply`: parameters onto objects, metadata, `previous_attributes`
//! - `views`: lists (pagination, filters) and `expand[]`; `search`: the search endpoints
//! - `events`: the event an operation emits
//! - `idempotency`: `Idempotency-Key` replays
//! - `versions`: parameters an older API version still takes (`versions.toml`)

pub mod apply;
pub mod call;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ops;
pub mod schema;
pub mod search;
pub mod store;
pub mod versions;
pub mod views;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use call::{Call, Scope};
pub use error::{ApiError, ApiResult};
pub use ops::{Behaviour, Ctx};
pub use schema::Schema;
pub use store::Store;

use crate::sandbox::Shared;

mod data {
    include!(concat!(env!("OUT_DIR"), "/api.rs"));
}

/// What `resources.toml` says about one resource (its header explains each key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conf {
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub methods: HashMap<String, String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    /// The parent's object, when `parent` is not named after it (a fee refund's `fee` is an
    /// `application_fee`).
    #[serde(default)]
    pub parent_object: Option<String>,
    #[serde(default)]
    pub defaults: Map<String, Value>,
    #[serde(default)]
    pub keep_deleted: bool,
    /// Its events concern a connected account: they carry `account` (the object's own id).
    #[serde(default)]
    pub connect_events: bool,
}

impl Conf {
    /// A nested resource's parent: the field its path's first id sets, and that object's kind.
    pub fn parent(&self) -> Option<(&str, &str)> {
        let field = self.parent.as_deref()?;
        Some((field, self.parent_object.as_deref().unwrap_or(field)))
    }
}

/// One operation of a resource: a stripe-node method.
#[derive(Debug)]
pub struct MethodDef {
    pub http: Method,
    pub path: String,
    segments: Vec<Option<String>>,
    pub params: Schema,
    pub list: bool,
}

/// One resource: the table's decisions and stripe-node's declarations.
#[derive(Debug)]
pub struct Resource {
    pub object: String,
    pub conf: Conf,
    /// The type's name under `Stripe.` (`Issuing.Cardholder`).
    pub ts: String,
    pub prefix: Option<String>,
    /// The snapshot event types whose object this is.
    pub events: Vec<String>,
    /// Field -> the objects it may expand to.
    pub expandable: HashMap<String, Vec<String>>,
    pub methods: HashMap<String, MethodDef>,
    pub template: Value,
    /// By dotted path, the empty object each field of object type starts from.
    pub shapes: apply::Shapes,
    /// What a delete answers (`{id, object, deleted: true}`), when Stripe deletes it.
    pub deleted: Option<Value>,
}

impl Resource {
    /// The event type of this resource for `verb` (`created`), if Stripe has one.
    pub fn event(&self, verb: &str) -> Option<&str> {
        // `refund.updated` rather than its legacy twin `charge.refund.updated`.
        let own = [
            format!("{}.{verb}", self.object),
            format!("{}.{verb}", self.object.replace('.', "_")),
        ];
        let mut of_verb = self
            .events
            .iter()
            .map(String::as_str)
            .filter(|e| e.rsplit('.').next() == Some(verb));
        let first = of_verb.clone().next();
        of_verb.find(|e| own.iter().any(|o| o == e)).or(first)
    }
}

pub struct Engine {
    resources: HashMap<String, Resource>,
    /// (resource, operation) per route, the most literal first.
    routes: Vec<(String, String)>,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

impl Engine {
    /// The engine, built from the embedded data on first use (the sandbox starts without it).
    pub fn get() -> &'static Engine {
        ENGINE.get_or_init(|| {
            Engine::load(include_str!("../resources.toml"), data::API)
                .expect("the embedded resource table loads")
        })
    }

    fn load(table: &str, api: &[(&str, &str)]) -> std::result::Result<Engine, String> {
        let confs: HashMap<String, Conf> =
            toml::from_str(table).map_err(|e| format!("resources.toml: {e}"))?;
        let generated: HashMap<&str, &str> = api.iter().copied().collect();
        let mut resources = HashMap::new();
        for (object, conf) in confs {
            let text = generated.get(object.as_str()).ok_or_else(|| {
                format!("fixtures/api/{object}.json is missing: run fixtures/generate.py")
            })?;
            let data: Value = serde_json::from_str(text)
                .map_err(|e| format!("fixtures/api/{object}.json: {e}"))?;
            resources.insert(object.clone(), resource(object, conf, data)?);
        }
        let mut routes: Vec<(String, String, Vec<bool>)> = resources
            .values()
            .flat_map(|r| {
                r.methods.iter().map(|(op, m)| {
                    let literal = m.segments.iter().map(Option::is_some).collect();
                    (r.object.clone(), op.clone(), literal)
                })
            })
            .collect();
        // `/v1/customers/search` before `/v1/customers/{id}`: literal segments first.
        routes.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        Ok(Engine {
            resources,
            routes: routes.into_iter().map(|(r, o, _)| (r, o)).collect(),
        })
    }

    pub fn resource(&self, object: &str) -> Option<&Resource> {
        self.resources.get(object)
    }

    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// The resource and operation a request names, with the ids in its path.
    pub fn route(&self, method: &Method, path: &str) -> Option<(&Resource, &str, Vec<String>)> {
        let given: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        for (object, op) in &self.routes {
            let r = &self.resources[object];
            let m = &r.methods[op];
            if m.http != *method || m.segments.len() != given.len() {
                continue;
            }
            let mut ids = Vec::new();
            let fits = m.segments.iter().zip(&given).all(|(seg, g)| match seg {
                Some(lit) => lit == g,
                None if !g.is_empty() => {
                    ids.push(percent_decode(g));
                    true
                }
                None => false,
            });
            if fits {
                return Some((r, op.as_str(), ids));
            }
        }
        None
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

fn resource(object: String, conf: Conf, data: Value) -> std::result::Result<Resource, String> {
    let text = |k: &str| data[k].as_str().map(str::to_owned);
    let mut methods = HashMap::new();
    for (op, m) in data["methods"].as_object().into_iter().flatten() {
        let path = m["path"].as_str().unwrap_or_default().to_owned();
        let segments = path
            .split('/')
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
            .collect();
        let http = Method::from_bytes(m["http"].as_str().unwrap_or("GET").as_bytes())
            .map_err(|e| format!("{object}.{op}: {e}"))?;
        methods.insert(
            op.clone(),
            MethodDef {
                http,
                path,
                segments,
                params: Schema::parse(&m["params"]),
                list: m["list"] == true,
            },
        );
    }
    let expandable = data["expandable"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let to = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect();
            (k.clone(), to)
        })
        .collect();
    Ok(Resource {
        ts: text("ts").unwrap_or_default(),
        prefix: text("prefix"),
        events: data["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect(),
        expandable,
        methods,
        template: data["template"].clone(),
        shapes: data["shapes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        deleted: data["deleted"].get("stub").cloned(),
        object,
        conf,
    })
}

/// The one handler of every engine route (the Stripe router's fallback): the route, the
/// `Call`, the parameters against their schema, then the operation.
pub async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let engine = Engine::get();
    let Some((resource, op, ids)) = engine.route(&method, &path) else {
        return unrecognized(&method, &path);
    };
    let call = match Call::from_request(req, &shared).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let answer = ops::run(&shared, &call, resource, op, ids);
    match answer {
        Ok(v) => axum::Json(v).into_response(),
        // API v2's error object has `type`, `code`, `message` and `doc_url`, no `param` (the
        // OpenAPI spec's `v2.error`).
        Err(mut e) if path.starts_with("/v2/") => {
            e.error.shift_remove("param");
            e.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Stripe's answer to a URL (or a method on it) it does not serve.
pub fn unrecognized(method: &Method, path: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
        &format!("Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_loads_and_every_action_has_a_behaviour() {
        let engine = Engine::get();
        for r in engine.resources() {
            for op in r.methods.keys() {
                if !matches!(
                    op.as_str(),
                    "create" | "retrieve" | "update" | "list" | "delete" | "search"
                ) {
                    assert!(
                        ops::behaviour(&r.object)
                            .is_some_and(|b| b.actions().contains(&op.as_str())),
                        "{}.{op} is in resources.toml but no behaviour serves it",
                        r.object
                    );
                }
            }
        }
        assert!(engine.resource("coupon").unwrap().event("created") == Some("coupon.created"));
    }

    #[test]
    fn routes_prefer_literal_segments_and_read_ids() {
        let engine = Engine::get();
        let (r, op, ids) = engine
            .route(
                &Method::POST,
                "/v1/identity/verification_sessions/vs_1/cancel",
            )
            .unwrap();
        assert_eq!(
            (r.object.as_str(), op, ids),
            (
                "identity.verification_session",
                "cancel",
                vec!["vs_1".to_owned()]
            )
        );
        let (r, op, ids) = engine
            .route(&Method::POST, "/v1/customers/cus_1/sources/card_1")
            .unwrap();
        assert_eq!((r.object.as_str(), op, ids.len()), ("card", "update", 2));
        let (r, op, _) = engine.route(&Method::GET, "/v1/customers").unwrap();
        assert_eq!((r.object.as_str(), op), ("customer", "list"));
        assert!(engine.route(&Method::PUT, "/v1/customers").is_none());
        assert!(engine.route(&Method::GET, "/v1/nothing").is_none());
    }
}
