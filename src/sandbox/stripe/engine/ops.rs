//! The operations every resource shares (create, retrieve, update, list, delete), `Ctx` (what
//! an operation and a behaviour see of a call), and `Behaviour`, the hook a resource's Stripe
//! behaviour implements (src/sandbox/stripe/behaviour/).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::{Call, Engine, Resource, Scope, Store, apply, events, views};
use crate::sandbox::Shared;

/// A resource's Stripe behaviour beyond storing what it was given. Every method has a default
/// that does nothing, so a behaviour writes only what Stripe does: the engine runs `serve`
/// first (an action, or an operation it takes over), else the generic operation with the hooks
/// around it:
///
/// create:  fresh object, parameters applied, `create`, stored, `<object>.created`, `created`
/// update:  parameters applied, `update`, stored, `<object>.updated` (when something changed), `updated`
/// delete:  `delete` (may refuse), removed, `<object>.deleted`, `deleted`
/// list:    every object of the kind that the filters and `keeps` accept
pub trait Behaviour: Sync {
    /// The object it is the behaviour of (`"customer"`).
    fn object(&self) -> &'static str;
    /// Parameters it reads itself: the generic code does not set them on the object.
    fn consumes(&self) -> &'static [&'static str] {
        &[]
    }
    /// The stripe-node methods beyond the standard ones it serves (`cancel`, `capture`, …).
    fn actions(&self) -> &'static [&'static str] {
        &[]
    }
    /// Serves `ctx.op` itself; `None` lets the generic operation run.
    fn serve(&self, _ctx: &Ctx) -> Option<ApiResult<Value>> {
        None
    }
    fn create(&self, _ctx: &Ctx, _object: &mut Value) -> ApiResult<()> {
        Ok(())
    }
    fn created(&self, _ctx: &Ctx, _object: &mut Value) -> ApiResult<()> {
        Ok(())
    }
    fn update(&self, _ctx: &Ctx, _before: &Value, _object: &mut Value) -> ApiResult<()> {
        Ok(())
    }
    fn updated(&self, _ctx: &Ctx, _before: &Value, _object: &mut Value) -> ApiResult<()> {
        Ok(())
    }
    fn delete(&self, _ctx: &Ctx, _object: &Value) -> ApiResult<()> {
        Ok(())
    }
    /// After the object is gone and its `.deleted` event emitted.
    fn deleted(&self, _ctx: &Ctx, _object: &Value) -> ApiResult<()> {
        Ok(())
    }
    /// Whether a list call returns `object` (beyond the generic filters).
    fn keeps(&self, _ctx: &Ctx, _object: &Value) -> bool {
        true
    }
    /// The list parameters `keeps` reads itself: the generic filters leave them out (a
    /// subscription's `status=all`).
    fn list_filters(&self) -> &'static [&'static str] {
        &[]
    }
    /// A field Stripe includes only when `expand[]` asks for it (a customer's `cash_balance`):
    /// its value for `object`, or `None` when `field` is not one.
    fn include(&self, _ctx: &Ctx, _object: &Value, _field: &str) -> Option<Value> {
        None
    }
}

/// The behaviour of `object`, if it has one.
pub fn behaviour(object: &str) -> Option<&'static dyn Behaviour> {
    crate::sandbox::stripe::behaviour::ALL
        .iter()
        .copied()
        .find(|b| b.object() == object)
}

/// A line item as `Ctx::priced_line_items` reads it.
pub struct PricedItem {
    pub price: Value,
    pub quantity: i64,
}

/// What an operation sees of its call.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub call: &'a Call,
    pub resource: &'a Resource,
    /// The operation: `create`, `retrieve`, `update`, `list`, `delete`, or an action's name.
    pub op: &'a str,
    /// The parameters, checked against the method's schema and typed.
    pub params: Map<String, Value>,
    /// The ids in the path: a nested resource's parent first, the object's own last.
    pub ids: Vec<String>,
    /// The account it acts in: the call's `Stripe-Account`, or the one a behaviour moves money
    /// into (`within`). Its objects are the only ones `store` reaches, its events carry
    /// `account` when it is a connected account.
    pub scope: Scope,
    /// The test clock the objects it makes and changes live on, and that clock's time: then
    /// `now` is the clock's frozen time, and every object it makes carries the clock
    /// (`test_clock`, where stripe-node declares it).
    pub clock: Option<(String, i64)>,
    store: Arc<Store>,
}

impl<'a> Ctx<'a> {
    /// An operation of `call`, in the account the call names.
    pub fn new(
        shared: &'a Arc<Shared>,
        call: &'a Call,
        resource: &'a Resource,
        op: &'a str,
        params: Map<String, Value>,
        ids: Vec<String>,
    ) -> Self {
        let scope = call.scope.clone();
        Ctx {
            store: shared.stripe.objects.of(&scope),
            shared,
            call,
            resource,
            op,
            params,
            ids,
            scope,
            clock: None,
        }
    }

    /// The same call at `time` on the test clock `clock`: what it makes and changes lives on
    /// the clock's time (docs.stripe.com/billing/testing/test-clocks: "the temporal starting
    /// point for all subscriptions associated with this clock").
    pub fn on_clock(&self, clock: &str, time: i64) -> Ctx<'a> {
        let mut ctx = self.within(self.scope.clone());
        ctx.params = self.params.clone();
        ctx.ids = self.ids.clone();
        ctx.clock = Some((clock.to_owned(), time));
        ctx
    }

    /// The same call acting in another account, without parameters: a destination charge's
    /// payment lands in the connected account, an application fee on the platform, and each
    /// emits its own account's events.
    pub fn within(&self, scope: Scope) -> Ctx<'a> {
        Ctx {
            store: self.shared.stripe.objects.of(&scope),
            shared: self.shared,
            call: self.call,
            resource: self.resource,
            op: self.op,
            params: Map::new(),
            ids: Vec::new(),
            scope,
            clock: self.clock.clone(),
        }
    }

    /// The connected account it acts in (`None`: the platform).
    pub fn account(&self) -> Option<&str> {
        match &self.scope {
            Scope::Connected(a) => Some(a),
            Scope::Platform => None,
        }
    }

    /// The objects of the account it acts in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The sandbox's clock: the time now, moved forward by `POST /sandbox/v1/clock/advance`.
    /// On a test clock, the clock's frozen time.
    pub fn now(&self) -> i64 {
        match &self.clock {
            Some((_, time)) => *time,
            None => self.shared.stripe.now(),
        }
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    pub fn bool_param(&self, name: &str) -> bool {
        self.params
            .get(name)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn int_param(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(Value::as_i64)
    }

    /// `amount`, all that is `left` when not given: Stripe's 400 `code` naming `amount`, with
    /// `message(amount)`, when it is below 1 or more than what is left (refunds, reversals,
    /// fee refunds, cash applied to a payment).
    pub fn amount_up_to(
        &self,
        left: i64,
        code: &str,
        message: impl Fn(i64) -> String,
    ) -> ApiResult<i64> {
        let amount = self.int_param("amount").unwrap_or(left);
        if amount < 1 || amount > left {
            return Err(ApiError::invalid(code, Some("amount"), &message(amount)));
        }
        Ok(amount)
    }

    /// The object's own id (the path's last).
    pub fn id(&self) -> &str {
        self.ids.last().map(String::as_str).unwrap_or_default()
    }

    /// The object `id` of kind `object`, or Stripe's 404 (the URL names it).
    pub fn get(&self, object: &str, id: &str) -> ApiResult<Value> {
        self.store()
            .get_of(object, id)
            .filter(|o| o["deleted"] != true)
            .ok_or_else(|| ApiError::not_found(object, id))
    }

    /// The object `id` of kind `object` that parameter `param` names, or Stripe's 400.
    pub fn find(&self, object: &str, id: &str, param: &str) -> ApiResult<Value> {
        self.store()
            .get_of(object, id)
            .filter(|o| o["deleted"] != true)
            .ok_or_else(|| ApiError::no_such(object, id, param))
    }

    /// The `line_items` parameter's entries with their prices: each must name an existing price
    /// (Stripe's 400 naming `line_items[i][price]` otherwise); the quantity defaults to 1.
    pub fn priced_line_items(&self) -> ApiResult<Vec<PricedItem>> {
        let items = self.param("line_items").and_then(Value::as_array);
        let mut priced = Vec::new();
        for (i, item) in items.into_iter().flatten().enumerate() {
            let param = format!("line_items[{i}][price]");
            let id = item["price"]
                .as_str()
                .ok_or_else(|| ApiError::missing_param(&param))?;
            priced.push(PricedItem {
                price: self.find("price", id, &param)?,
                quantity: item["quantity"].as_i64().unwrap_or(1),
            });
        }
        Ok(priced)
    }

    /// The object this call's path names.
    pub fn target(&self) -> ApiResult<Value> {
        self.get(&self.resource.object, self.id())
    }

    pub fn put(&self, object: &Value) {
        self.store().put(object);
    }

    /// Records and delivers an event about `object` (`previous` for an update), caused by this
    /// call.
    pub fn emit(&self, event_type: &str, object: &Value, previous: Option<Value>) {
        events::emit(self, event_type, object, previous);
    }

    /// Stores an object changed from `before` and emits its `.updated` event with
    /// `previous_attributes` when something changed.
    pub fn save_update(&self, before: &Value, after: &Value) {
        self.put(after);
        let previous = apply::previous_attributes(before, after);
        let changed = previous.as_object().is_some_and(|m| !m.is_empty());
        let kind = after["object"].as_str().unwrap_or_default();
        let event = Engine::get()
            .resource(kind)
            .and_then(|r| r.event("updated"));
        if let (true, Some(event)) = (changed, event) {
            self.emit(event, after, Some(previous));
        }
    }

    /// A new object of `object`: its template with a new id, `created` now, the account's mode
    /// and the table's defaults. Not stored.
    pub fn fresh(&self, object: &str) -> Value {
        let r = Engine::get()
            .resource(object)
            .expect("a resource of the table");
        let mut o = fresh(r, self.now(), self.shared.livemode());
        self.put_on_clock(&mut o);
        o
    }

    /// An object of a kind stripe-node gives a `test_clock` carries the clock it lives on.
    fn put_on_clock(&self, object: &mut Value) {
        if let (Some((clock, _)), Some(field)) = (&self.clock, object.get_mut("test_clock")) {
            *field = json!(clock);
        }
    }

    /// `given` as the object at `path` of an object of `object`, with every field Stripe's type
    /// declares there (`ctx.shaped("charge", "payment_method_details.card", &details)`).
    pub fn shaped(&self, object: &str, path: &str, given: &Value) -> Value {
        let r = Engine::get()
            .resource(object)
            .expect("a resource of the table");
        apply::shaped(given, path, &r.shapes)
    }

    /// Another resource's create, with typed `params`, as if called: its behaviour and events
    /// included (a plan's inline product, a customer's payment method).
    pub fn create(&self, object: &str, params: Value) -> ApiResult<Value> {
        let resource = Engine::get()
            .resource(object)
            .expect("a resource of the table");
        let mut sub = self.within(self.scope.clone());
        sub.resource = resource;
        sub.op = "create";
        sub.params = params.as_object().cloned().unwrap_or_default();
        match behaviour(object).and_then(|b| b.serve(&sub)) {
            Some(answer) => answer,
            None => create(&sub),
        }
    }
}

/// A new object from the resource's template (see `Ctx::fresh`).
pub fn fresh(r: &Resource, now: i64, livemode: bool) -> Value {
    let mut o = r.template.clone();
    let id = new_id(r.prefix.as_deref());
    list_urls(&mut o, &id);
    let Some(map) = o.as_object_mut() else {
        return o;
    };
    for (field, value) in [
        ("id", json!(id)),
        ("created", json!(now)),
        ("livemode", json!(livemode)),
        ("updated", json!(now)),
    ] {
        if map.contains_key(field) {
            map.insert(field.into(), value);
        }
    }
    for (k, v) in &r.conf.defaults {
        map.insert(k.clone(), v.clone());
    }
    o
}

/// Stripe's ids: the prefix and 24 characters (`cus_…`); a coupon's has no prefix (8 capitals).
pub fn new_id(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) => format!("{p}_{}", crate::secret::random_alnum(24)),
        None => crate::secret::random_alnum(8).to_ascii_uppercase(),
    }
}

/// An embedded list's URL names its object (`/v1/transfers/{id}/reversals`).
fn list_urls(v: &mut Value, id: &str) {
    match v {
        Value::Object(map) => {
            if map.get("object").and_then(Value::as_str) == Some("list")
                && let Some(Value::String(url)) = map.get_mut("url")
            {
                *url = url.replace("{id}", id);
            }
            map.values_mut().for_each(|child| list_urls(child, id));
        }
        Value::Array(items) => items.iter_mut().for_each(|child| list_urls(child, id)),
        _ => {}
    }
}

/// Runs one operation of `resource` for `call`: its parameters checked, then the behaviour's
/// `serve` or the generic operation, then `expand[]`.
pub fn run(
    shared: &Arc<Shared>,
    call: &Call,
    resource: &Resource,
    op: &str,
    ids: Vec<String>,
) -> ApiResult<Value> {
    let def = &resource.methods[op];
    let version = call
        .stripe_version
        .as_deref()
        .unwrap_or(&shared.api_version);
    let mut raw = call.raw.clone();
    let method = format!("{}.{op}", resource.object);
    super::versions::read_legacy(&method, &mut raw);
    let older = super::versions::take_removed(&method, version, &mut raw)?;
    let mut params = def.params.coerce(&raw, "")?;
    if let Some(p) = params.as_object_mut() {
        p.extend(older);
    }
    let params = params.as_object().cloned().unwrap_or_default();
    let mut ctx = Ctx::new(shared, call, resource, op, params, ids);
    ctx.clock = clock_of(&ctx);
    let served = behaviour(&resource.object).and_then(|b| b.serve(&ctx));
    let mut answer = match served {
        Some(answer) => answer?,
        None => match op {
            "create" => create(&ctx)?,
            "retrieve" => retrieve(&ctx)?,
            "update" => update(&ctx)?,
            "delete" => delete(&ctx)?,
            "list" => views::list(&ctx, &|_| true)?,
            "search" => super::search::search(&ctx)?,
            other => {
                return Err(ApiError::request(&format!(
                    "The sandbox does not serve {}.{other}.",
                    resource.object
                )));
            }
        },
    };
    views::expand(&ctx, &mut answer, &call.expand)?;
    Ok(answer)
}

/// The test clock a call's objects live on, with its time: for the kinds stripe-node gives a
/// `test_clock` (customers, subscriptions, schedules, invoices, invoice items, quotes), the clock
/// the call names (a customer's `test_clock`), its `customer`'s (or `from_subscription`'s), or
/// the target object's.
/// docs.stripe.com/billing/testing/test-clocks/api-advanced-usage: the customer, and every
/// subscription and invoice made for it, are associated with the clock.
fn clock_of(ctx: &Ctx) -> Option<(String, i64)> {
    ctx.resource.template.get("test_clock")?;
    let store = ctx.store();
    let named = |kind: &str, id: &str| -> Option<String> {
        Some(store.get_of(kind, id)?["test_clock"].as_str()?.to_owned())
    };
    let clock = match (
        ctx.str_param("test_clock"),
        ctx.str_param("customer"),
        ctx.str_param("from_subscription"),
    ) {
        (Some(clock), ..) => clock.to_owned(),
        (None, Some(customer), _) => named("customer", customer)?,
        // A schedule made from a subscription lives on the subscription's clock.
        (None, None, Some(sub)) => named("subscription", sub)?,
        (None, None, None) => named(&ctx.resource.object, ctx.ids.last()?)?,
    };
    let time = store.get_of("test_helpers.test_clock", &clock)?["frozen_time"].as_i64()?;
    Some((clock, time))
}

/// The generic create (see `Behaviour`).
pub fn create(ctx: &Ctx) -> ApiResult<Value> {
    let r = ctx.resource;
    let b = behaviour(&r.object);
    let mut object = ctx.fresh(&r.object);
    if let (Some((field, kind)), Some(parent)) = (r.conf.parent(), ctx.ids.first()) {
        ctx.get(kind, parent)?;
        object[field] = json!(parent);
    }
    if let Some(id) = ctx.str_param("id")
        && ctx.store().get_of(&r.object, id).is_some()
    {
        return Err(ApiError::invalid(
            "resource_already_exists",
            Some("id"),
            &format!("A {} with the id '{id}' already exists.", r.object),
        ));
    }
    let skip = b.map(|b| b.consumes()).unwrap_or_default();
    check_references(ctx, skip)?;
    apply::apply(&mut object, &ctx.params, skip, &ctx.resource.shapes)?;
    if let Some(b) = b {
        b.create(ctx, &mut object)?;
    }
    ctx.put(&object);
    if let Some(event) = r.event("created") {
        ctx.emit(event, &object, None);
    }
    if let Some(b) = b {
        b.created(ctx, &mut object)?;
    }
    Ok(object)
}

/// An object of a nested resource belongs to the parent its path names.
fn owned(ctx: &Ctx, object: Value) -> ApiResult<Value> {
    match (&ctx.resource.conf.parent, ctx.ids.len()) {
        (Some(field), n)
            if n > 1 && object[field.as_str()].as_str() != Some(ctx.ids[0].as_str()) =>
        {
            Err(ApiError::not_found(&ctx.resource.object, ctx.id()))
        }
        _ => Ok(object),
    }
}

pub fn retrieve(ctx: &Ctx) -> ApiResult<Value> {
    let r = ctx.resource;
    match ctx.store().get_of(&r.object, ctx.id()) {
        // Stripe still answers a deleted customer, as its stub.
        Some(o) if o["deleted"] == true && r.conf.keep_deleted => Ok(o),
        Some(o) if o["deleted"] != true => owned(ctx, o),
        _ => Err(ApiError::not_found(&r.object, ctx.id())),
    }
}

pub fn update(ctx: &Ctx) -> ApiResult<Value> {
    let before = owned(ctx, ctx.target()?)?;
    let b = behaviour(&ctx.resource.object);
    let skip = b.map(|b| b.consumes()).unwrap_or_default();
    check_references(ctx, skip)?;
    let mut object = before.clone();
    apply::apply(&mut object, &ctx.params, skip, &ctx.resource.shapes)?;
    if let Some(b) = b {
        b.update(ctx, &before, &mut object)?;
    }
    ctx.save_update(&before, &object);
    if let Some(b) = b {
        b.updated(ctx, &before, &mut object)?;
    }
    Ok(object)
}

pub fn delete(ctx: &Ctx) -> ApiResult<Value> {
    let r = ctx.resource;
    let object = owned(ctx, ctx.target()?)?;
    if let Some(b) = behaviour(&r.object) {
        b.delete(ctx, &object)?;
    }
    let mut stub = r
        .deleted
        .clone()
        .unwrap_or_else(|| json!({"id": null, "object": null, "deleted": true}));
    stub["id"] = object["id"].clone();
    stub["object"] = object["object"].clone();
    if r.conf.keep_deleted {
        ctx.put(&stub);
    } else {
        ctx.store().remove(&r.object, ctx.id());
    }
    if let Some(event) = r.event("deleted") {
        ctx.emit(event, &object, None);
    }
    if let Some(b) = behaviour(&r.object) {
        b.deleted(ctx, &object)?;
    }
    Ok(stub)
}

/// A parameter that sets an expandable field names an object: one the sandbox serves must
/// exist (Stripe's "No such customer: 'cus_x'", naming the parameter).
fn check_references(ctx: &Ctx, skip: &[&str]) -> ApiResult<()> {
    let engine = Engine::get();
    for (param, value) in &ctx.params {
        let (Some(id), Some(kinds)) = (value.as_str(), ctx.resource.expandable.get(param)) else {
            continue;
        };
        if skip.contains(&param.as_str()) || id.is_empty() {
            continue;
        }
        let served: Vec<&String> = kinds
            .iter()
            .filter(|k| engine.resource(k).is_some())
            .collect();
        if served.is_empty() {
            continue;
        }
        if !served.iter().any(|k| {
            ctx.store()
                .get_of(k, id)
                .is_some_and(|o| o["deleted"] != true)
        }) {
            return Err(ApiError::no_such(served[0], id, param));
        }
    }
    Ok(())
}
