//! Every object the sandbox's Stripe API holds, by object name and id (a price and its plan
//! share an id), in the order they were created (lists are newest first, paginated by id), and,
//! apart from them, the sandbox's own bookkeeping
//! about an object (what a test card does when charged, the data a Checkout Session keeps for
//! its payment): never part of an answer, so never in Stripe's objects.
//!
//! Each account has a `Store` of its own (`Stores`): the platform's, and one per connected
//! account, which only a call with that account's `Stripe-Account` reaches ("Charges that you
//! create directly on the connected account are reported only on that account",
//! docs.stripe.com/connect/direct-charges). A `Ctx` holds the store of the account it acts in,
//! so the scope is enforced by what a behaviour can reach, not by filters it could forget.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};

use super::Scope;

/// The platform's store and each connected account's, apart.
#[derive(Default)]
pub struct Stores {
    platform: Arc<Store>,
    connected: RwLock<HashMap<String, Arc<Store>>>,
}

impl Stores {
    /// The platform's own objects (its connected accounts among them).
    pub fn platform(&self) -> &Store {
        &self.platform
    }

    /// The store of `scope`'s account, made on first use.
    pub fn of(&self, scope: &Scope) -> Arc<Store> {
        let Scope::Connected(account) = scope else {
            return self.platform.clone();
        };
        if let Some(s) = self
            .connected
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
        {
            return s.clone();
        }
        self.connected
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(account.clone())
            .or_default()
            .clone()
    }

    /// Forgets a connected account's objects (it was deleted: nobody reaches them again).
    pub fn forget(&self, account: &str) {
        self.connected
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    /// The connected accounts that hold objects, with their stores.
    pub fn connected(&self) -> Vec<(String, Arc<Store>)> {
        self.connected
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// How many objects every account holds.
    pub fn len(&self) -> usize {
        self.platform.len()
            + self
                .connected
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|s| s.len())
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    objects: HashMap<(String, String), Slot>,
    /// Id -> the object name it was first stored as (what `get` answers).
    kinds: HashMap<String, String>,
    /// Per `object` name: creation order -> id.
    order: HashMap<String, BTreeMap<u64, String>>,
    next: u64,
    private: HashMap<String, Map<String, Value>>,
}

struct Slot {
    seq: u64,
    value: Value,
}

/// Where a page of a list starts (Stripe's `starting_after` / `ending_before`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor<'a> {
    First,
    After(&'a str),
    Before(&'a str),
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object `id`, whatever its kind (the first stored under that id).
    pub fn get(&self, id: &str) -> Option<Value> {
        let inner = self.lock();
        let kind = inner.kinds.get(id)?;
        inner
            .objects
            .get(&(kind.clone(), id.to_owned()))
            .map(|s| s.value.clone())
    }

    /// The object `id` if it is of `object` (`"customer"`, `"price"`, …).
    pub fn get_of(&self, object: &str, id: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(object.to_owned(), id.to_owned()))
            .map(|s| s.value.clone())
    }

    /// Stores an object (by its `object` and `id`), new or changed.
    pub fn put(&self, value: &Value) {
        let (Some(id), Some(kind)) = (value["id"].as_str(), value["object"].as_str()) else {
            return;
        };
        let key = (kind.to_owned(), id.to_owned());
        let mut inner = self.lock();
        if let Some(slot) = inner.objects.get_mut(&key) {
            slot.value = value.clone();
            return;
        }
        inner.next += 1;
        let seq = inner.next;
        inner
            .order
            .entry(kind.to_owned())
            .or_default()
            .insert(seq, id.to_owned());
        inner
            .kinds
            .entry(id.to_owned())
            .or_insert_with(|| kind.to_owned());
        inner.objects.insert(
            key,
            Slot {
                seq,
                value: value.clone(),
            },
        );
    }

    /// Removes the object `id` of `object` (a delete Stripe forgets); its notes go with it.
    pub fn remove(&self, object: &str, id: &str) -> Option<Value> {
        let mut inner = self.lock();
        let slot = inner.objects.remove(&(object.to_owned(), id.to_owned()))?;
        if let Some(order) = inner.order.get_mut(object) {
            order.remove(&slot.seq);
        }
        if inner.kinds.get(id).is_some_and(|k| k == object) {
            inner.kinds.remove(id);
            inner.private.remove(id);
        }
        Some(slot.value)
    }

    /// Up to `limit` objects of `kind` that `keep` accepts, newest first, from `cursor`, and
    /// whether more follow. `None` when the cursor names no object of that kind.
    pub fn page(
        &self,
        kind: &str,
        cursor: Cursor,
        limit: usize,
        keep: &dyn Fn(&Value) -> bool,
    ) -> Option<(Vec<Value>, bool)> {
        let inner = self.lock();
        let empty = BTreeMap::new();
        let order = inner.order.get(kind).unwrap_or(&empty);
        let seq_of = |id: &str| {
            inner
                .objects
                .get(&(kind.to_owned(), id.to_owned()))
                .map(|s| s.seq)
        };
        let value = |id: &String| &inner.objects[&(kind.to_owned(), id.clone())].value;
        let mut page: Vec<Value> = Vec::new();
        let more;
        match cursor {
            Cursor::Before(id) => {
                // The page just newer than `id`, still newest first.
                let seq = seq_of(id)?;
                let mut newer = order
                    .range(seq + 1..)
                    .map(|(_, id)| value(id))
                    .filter(|v| keep(v));
                page.extend(newer.by_ref().take(limit).cloned());
                more = newer.next().is_some();
                page.reverse();
            }
            Cursor::After(id) => {
                let seq = seq_of(id)?;
                let mut older = order
                    .range(..seq)
                    .rev()
                    .map(|(_, id)| value(id))
                    .filter(|v| keep(v));
                page.extend(older.by_ref().take(limit).cloned());
                more = older.next().is_some();
            }
            Cursor::First => {
                let mut all = order.values().rev().map(value).filter(|v| keep(v));
                page.extend(all.by_ref().take(limit).cloned());
                more = all.next().is_some();
            }
        }
        Some((page, more))
    }

    /// Every object of `kind` that `keep` accepts, oldest first.
    pub fn all(&self, kind: &str, keep: &dyn Fn(&Value) -> bool) -> Vec<Value> {
        let inner = self.lock();
        inner
            .order
            .get(kind)
            .map(|o| {
                o.values()
                    .map(|id| &inner.objects[&(kind.to_owned(), id.clone())].value)
                    .filter(|v| keep(v))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The sandbox's own note `key` about object `id` (never served).
    pub fn private(&self, id: &str, key: &str) -> Option<Value> {
        self.lock()
            .private
            .get(id)
            .and_then(|m| m.get(key))
            .cloned()
    }

    pub fn set_private(&self, id: &str, key: &str, value: Value) {
        self.lock()
            .private
            .entry(id.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
    }

    /// Changes note `key` about object `id` in place (a list, when there is none yet), under the
    /// store's lock: two calls adding to one note both land.
    pub fn update_private(&self, id: &str, key: &str, f: impl FnOnce(&mut Value)) {
        let mut inner = self.lock();
        let note = inner
            .private
            .entry(id.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        f(note);
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(page: &(Vec<Value>, bool)) -> (Vec<&str>, bool) {
        (
            page.0.iter().map(|v| v["id"].as_str().unwrap()).collect(),
            page.1,
        )
    }

    #[test]
    fn lists_are_newest_first_and_paginate_both_ways() {
        let store = Store::default();
        for i in 1..=5 {
            store.put(&json!({"id": format!("c{i}"), "object": "coupon", "n": i}));
        }
        store.put(&json!({"id": "p1", "object": "product"}));
        store.put(&json!({"id": "c2", "object": "coupon", "n": 22}));
        let all = |_: &Value| true;
        let first = store.page("coupon", Cursor::First, 2, &all).unwrap();
        assert_eq!(ids(&first), (vec!["c5", "c4"], true));
        let next = store.page("coupon", Cursor::After("c4"), 2, &all).unwrap();
        assert_eq!(ids(&next), (vec!["c3", "c2"], true));
        assert_eq!(next.0[1]["n"], 22, "an update keeps the object's place");
        let back = store
            .page("coupon", Cursor::Before("c3"), 10, &all)
            .unwrap();
        assert_eq!(ids(&back), (vec!["c5", "c4"], false));
        let back = store.page("coupon", Cursor::Before("c2"), 1, &all).unwrap();
        assert_eq!(ids(&back), (vec!["c3"], true));
        let odd = |v: &Value| v["n"].as_i64().unwrap() % 2 == 1;
        assert_eq!(
            ids(&store.page("coupon", Cursor::First, 10, &odd).unwrap()),
            (vec!["c5", "c3", "c1"], false)
        );
        assert!(
            store.page("coupon", Cursor::After("p1"), 2, &all).is_none(),
            "a cursor of another kind"
        );
        store.put(&json!({"id": "c3", "object": "plan"}));
        assert_eq!(
            store.get("c3").unwrap()["object"],
            "coupon",
            "a twin keeps the first's id"
        );
        assert_eq!(store.get_of("plan", "c3").unwrap()["object"], "plan");
        store.set_private("c1", "outcome", json!("declined"));
        assert_eq!(store.remove("coupon", "c1").unwrap()["n"], 1);
        assert_eq!(store.private("c1", "outcome"), None);
        assert_eq!(store.all("coupon", &all).len(), 4);
    }
}
