//! What `events list|sign|send|verify` do with synthetic events: the catalogue listed by
//! object, an event rendered (with the notes its API version calls for) and signed, one signed
//! delivery, a Stripe-Signature header judged; and their reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::fixtures::{Catalog, Prepared, RenderOptions};
use super::signature::{self, Rejection, Signer};
use super::{SignedEvent, versions};
use crate::error::{Error, Result};
use crate::http::{ExtraHeader, Reply};
use crate::printer::{Printer, Report};

/// One template as `events list` shows it.
pub struct Listed {
    name: String,
    event_type: String,
    /// The resource it is about (`data.object.object`, a thin event's `related_object.type`).
    object: String,
    thin: bool,
}

/// The templates, grouped by the resource they are about.
pub struct Types(Vec<Listed>);

impl Types {
    fn by_object(&self, thin: bool) -> BTreeMap<&str, Vec<&Listed>> {
        let mut groups = BTreeMap::<&str, Vec<&Listed>>::new();
        for t in self.0.iter().filter(|t| t.thin == thin) {
            groups.entry(t.object.as_str()).or_default().push(t);
        }
        groups
    }
}

impl Report for Types {
    fn json(&self) -> Value {
        let names = |thin: Option<bool>| -> Vec<&str> {
            self.0
                .iter()
                .filter(|t| thin.is_none_or(|k| t.thin == k))
                .map(|t| t.name.as_str())
                .collect()
        };
        let templates: Vec<Value> = self
            .0
            .iter()
            .map(|t| json!({"name": t.name, "type": t.event_type, "object": t.object, "thin": t.thin}))
            .collect();
        json!({ "types": names(None), "thin": names(Some(true)), "templates": templates })
    }

    fn human(&self, p: &Printer) -> Vec<String> {
        let mut lines = Vec::new();
        for thin in [false, true] {
            let groups = self.by_object(thin);
            if groups.is_empty() {
                continue;
            }
            if thin {
                lines.push(p.paint(
                    "thin events (event destinations with the thin payload), by related object:",
                    "1",
                ));
            }
            for (object, types) in groups {
                lines.push(format!("{object} ({})", types.len()));
                for t in types {
                    lines.push(if t.name == t.event_type {
                        format!("  {}", t.name)
                    } else {
                        format!("  {}  (sends {})", t.name, t.event_type)
                    });
                }
            }
        }
        lines.push(format!("{} template(s)", self.0.len()));
        lines
    }
}

/// The templates whose names match `globs` (all when empty).
pub fn list(fixtures_dir: Option<&Path>, globs: &[String]) -> Result<Types> {
    let catalog = Catalog::load(fixtures_dir)?;
    let matchers: Vec<wildmatch::WildMatch> =
        globs.iter().map(|g| wildmatch::WildMatch::new(g)).collect();
    let listed: Vec<Listed> = catalog
        .types()
        .filter(|t| matchers.is_empty() || matchers.iter().any(|g| g.matches(t)))
        .map(|name| Listed {
            name: name.to_owned(),
            event_type: catalog.event_type(name).to_owned(),
            object: catalog
                .object_of(name)
                .unwrap_or("(no related object)")
                .to_owned(),
            thin: catalog.is_thin(name),
        })
        .collect();
    if listed.is_empty() && !matchers.is_empty() {
        return Err(Error::usage(format!(
            "{} matches no event type; `stripe-ops events list` shows them all",
            globs.join(" ")
        )));
    }
    Ok(Types(listed))
}

/// The template of `event_type` rendered with `opts`; with an API version, the notes on what
/// the object would look like at it (a thin event names none).
pub fn prepare(
    fixtures_dir: Option<&Path>,
    event_type: &str,
    opts: &RenderOptions,
    out: &Printer,
) -> Result<Prepared> {
    let catalog = Catalog::load(fixtures_dir)?;
    let prepared = catalog.prepare(event_type, opts)?;
    if let Some(version) = &opts.api_version {
        if catalog.is_thin(event_type) {
            out.tell(format!(
                "note: --api-version {version} does not apply to {event_type}: a thin event names no API version (its receiver fetches the event at its own)"
            ));
        }
        for note in versions::shape_notes(version, catalog.object_of(event_type).unwrap_or("")) {
            out.tell(format!("note: {note}"));
        }
    }
    Ok(prepared)
}

/// A signed event, printed whole, or with its body and header in files.
pub struct Signed {
    event: SignedEvent,
    body_file: Option<PathBuf>,
    header_file: Option<PathBuf>,
}

impl Signed {
    fn whole(&self) -> Value {
        let e = &self.event;
        json!({ "id": e.id, "type": e.event_type, "header": e.header, "body": e.body })
    }
}

impl Report for Signed {
    fn json(&self) -> Value {
        if self.body_file.is_none() && self.header_file.is_none() {
            return self.whole();
        }
        let e = &self.event;
        json!({
            "id": e.id,
            "type": e.event_type,
            "body_file": self.body_file,
            "header_file": self.header_file,
            "header": if self.header_file.is_none() { Some(&e.header) } else { None },
        })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let e = &self.event;
        if self.body_file.is_none() && self.header_file.is_none() {
            // One line, as-is: `body` must round-trip byte for byte.
            return vec![self.whole().to_string()];
        }
        let mut lines = vec![format!("signed {} {}", e.event_type, e.id)];
        if let Some(p) = &self.body_file {
            lines.push(format!("body   -> {}", p.display()));
        }
        lines.push(match &self.header_file {
            Some(p) => format!("header -> {}", p.display()),
            None => format!("header: {}", e.header),
        });
        lines
    }
}

/// Signs `prepared` (its id and time pinned when given), writing the body and the header to
/// their files when asked.
pub fn sign(
    prepared: &Prepared,
    signers: &[Signer],
    id: Option<&str>,
    timestamp: Option<i64>,
    body_file: Option<PathBuf>,
    header_file: Option<PathBuf>,
) -> Result<Signed> {
    let event = super::sign_event(prepared, signers, id, timestamp);
    if let Some(path) = &body_file {
        write_plain(path, event.body.as_bytes())?;
    }
    if let Some(path) = &header_file {
        write_plain(path, event.header.as_bytes())?;
    }
    Ok(Signed {
        event,
        body_file,
        header_file,
    })
}

fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

/// One delivery and its answer.
pub struct Sent {
    event: SignedEvent,
    to: String,
    reply: Reply,
}

impl Report for Sent {
    fn json(&self) -> Value {
        let (e, r) = (&self.event, &self.reply);
        json!({
            "id": e.id, "type": e.event_type, "to": self.to,
            "status": r.status.as_u16(), "ok": r.status.is_success(), "ms": r.ms,
            "answer": crate::http::excerpt(&r.body, 300),
        })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let (e, r) = (&self.event, &self.reply);
        let mut lines = vec![format!(
            "{} {} -> {} in {:.1} ms",
            e.event_type, e.id, r.status, r.ms
        )];
        let answer = crate::http::excerpt(&r.body, 300);
        if !answer.is_empty() {
            lines.push(format!("answer: {answer}"));
        }
        lines
    }

    fn verdict(&self) -> Result<()> {
        if self.reply.status.is_success() {
            Ok(())
        } else {
            Err(Error::failed(format!(
                "receiver answered {}",
                self.reply.status
            )))
        }
    }
}

/// POSTs `event` to `to` as Stripe delivers it, with `headers` added.
pub async fn send(
    client: &reqwest::Client,
    to: String,
    event: SignedEvent,
    headers: &[ExtraHeader],
) -> Result<Sent> {
    let reply = super::post(client, &to, &event.body, Some(&event.header), headers).await?;
    Ok(Sent { event, to, reply })
}

/// A verdict on a signature, and when it was judged.
pub struct Verdict {
    verdict: std::result::Result<i64, Rejection>,
    now: i64,
}

impl Verdict {
    /// Seconds the signed timestamp is ahead of now: valid, as Stripe's libraries judge it.
    fn ahead(&self) -> Option<i64> {
        let t = *self.verdict.as_ref().ok()?;
        (t > self.now).then(|| t.saturating_sub(self.now))
    }
}

impl Report for Verdict {
    fn json(&self) -> Value {
        match &self.verdict {
            Ok(t) => json!({
                "ok": true, "valid": true, "timestamp": t, "seconds_in_future": self.ahead(),
            }),
            Err(r) => json!({ "ok": false, "valid": false, "reason": r.to_string() }),
        }
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        match (&self.verdict, self.ahead()) {
            (Ok(t), Some(ahead)) => vec![format!(
                "valid (signed at {t}, {ahead} s in the future: Stripe's libraries accept that)"
            )],
            (Ok(t), None) => vec![format!("valid (signed at {t})")],
            (Err(_), _) => Vec::new(),
        }
    }

    fn verdict(&self) -> Result<()> {
        match &self.verdict {
            Ok(_) => Ok(()),
            Err(reason) => Err(Error::failed(format!("invalid: {reason}"))),
        }
    }
}

/// Judges `header` over `body` at `now` as Stripe's libraries do: only a timestamp older than
/// `tolerance` is refused. A header that is not one is an input error.
pub fn verify(
    header: &str,
    body: &[u8],
    signers: &[Signer],
    tolerance: i64,
    now: i64,
) -> Result<Verdict> {
    let verdict = signature::verify(
        header,
        body,
        signers,
        tolerance,
        now,
        signature::Window::PastOnly,
    );
    if let Err(Rejection::Malformed(why)) = &verdict {
        return Err(Error::usage(format!(
            "malformed Stripe-Signature header: {why}"
        )));
    }
    Ok(Verdict { verdict, now })
}
