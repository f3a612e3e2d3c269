//! Which receivers the relay forwards to: `--target NAME=URL` flags plus `[fanout]` targets in
//! `stripe-ops.toml`, each with an optional secret of its own (then events are re-signed for it)
//! and extra headers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::route::Route;
use crate::config::{FanoutTarget, OneOrMany};
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::secret::{self, ExposeSecret};
use crate::webhook::signature::Signer;

/// A resolved target, ready to deliver to.
#[derive(Clone)]
pub struct TargetSpec {
    pub name: String,
    pub url: String,
    /// Present when the target has its own secret: events are re-signed with it.
    pub signer: Option<Signer>,
    pub headers: HeaderMap,
    /// Which events it gets.
    pub route: Route,
    /// A fingerprint of everything above (secret included, hashed), to notice changes on reload.
    pub fingerprint: String,
    /// Its own SQS queue (`--target-queue`, `queue = "…"`): with one, it takes events from
    /// that queue only.
    pub queue: Option<String>,
}

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("resigned", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

/// Parses `NAME=VALUE` (used by `--target` and `--target-secret-file`).
pub fn parse_pair(text: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    check_name(name)?;
    if value.is_empty() {
        return Err(format!("{text:?} has an empty value"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Target names become file names in the spool, so they are kept simple.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "target name {name:?} must be 1-64 characters of A-Z a-z 0-9 - _ . (not starting with .)"
        ))
    }
}

/// What the flags say about targets: `--target`, `--target-secret-file`, `--target-events`,
/// `--target-match` (the last three name flag targets).
#[derive(Debug, Clone, Default)]
pub struct TargetFlags {
    pub targets: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub queues: Vec<(String, String)>,
    pub events: Vec<(String, Vec<String>)>,
    pub matches: Vec<(String, String, String)>,
}

/// Merges flag targets (with their secret files and routes) and config targets; names must be
/// unique.
pub fn merge(flags: &TargetFlags, config: &[FanoutTarget]) -> Result<Vec<FanoutTarget>> {
    let mut all = flag_targets(&flags.targets, &flags.secrets)?;
    for (name, globs) in &flags.events {
        flag_target(&mut all, name, "--target-events")?
            .events
            .extend(globs.iter().cloned());
    }
    for (name, path, value) in &flags.matches {
        let t = flag_target(&mut all, name, "--target-match")?;
        let values = t
            .matches
            .entry(path.clone())
            .or_insert_with(|| OneOrMany::Many(Vec::new()));
        *values = OneOrMany::Many([values.values(), vec![value.clone()]].concat());
    }
    for (name, queue) in &flags.queues {
        flag_target(&mut all, name, "--target-queue")?.queue = Some(queue.clone());
    }
    all.extend(config.iter().cloned());
    unique(&all)?;
    Ok(all)
}

fn flag_target<'a>(
    all: &'a mut [FanoutTarget],
    name: &str,
    flag: &str,
) -> Result<&'a mut FanoutTarget> {
    all.iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::usage(format!("{flag} names {name}, which is not a --target")))
}

fn flag_targets(
    flags: &[(String, String)],
    flag_secrets: &[(String, String)],
) -> Result<Vec<FanoutTarget>> {
    let mut secrets: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, file) in flag_secrets {
        if secrets.insert(name, file).is_some() {
            return Err(Error::usage(format!(
                "--target-secret-file given twice for {name}"
            )));
        }
    }
    let all: Vec<FanoutTarget> = flags
        .iter()
        .map(|(name, url)| FanoutTarget {
            name: name.clone(),
            url: url.clone(),
            secret_file: secrets.remove(name.as_str()).map(PathBuf::from),
            ..Default::default()
        })
        .collect();
    if let Some(name) = secrets.keys().next() {
        return Err(Error::usage(format!(
            "--target-secret-file names {name}, which is not a --target"
        )));
    }
    Ok(all)
}

fn unique(all: &[FanoutTarget]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for t in all {
        check_name(&t.name).map_err(Error::usage)?;
        if !seen.insert(t.name.as_str()) {
            return Err(Error::usage(format!(
                "target {} is defined twice (names must be unique)",
                t.name
            )));
        }
    }
    if all.is_empty() {
        return Err(Error::usage(
            "no targets: give --target NAME=URL or [[fanout.target]] entries in stripe-ops.toml",
        ));
    }
    Ok(())
}

/// Every target, resolved: flag targets (with their secret files) and config targets, merged
/// and checked. Re-signing needs verified input (`verify_given`): otherwise anyone's POST would
/// become an event the target trusts.
pub fn resolve_all(
    flags: &TargetFlags,
    config: &[FanoutTarget],
    verify_given: bool,
    out: &Printer,
) -> Result<Vec<TargetSpec>> {
    let specs = merge(flags, config)?
        .iter()
        .map(|t| resolve(t, out))
        .collect::<Result<Vec<_>>>()?;
    let resigned: Vec<&str> = specs
        .iter()
        .filter(|s| s.signer.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if !resigned.is_empty() && !verify_given {
        return Err(Error::usage(format!(
            "target(s) {} re-sign events with their own secret, so incoming events must be \
             verified: give --verify-secret-file",
            resigned.join(", ")
        )));
    }
    Ok(specs)
}

/// Validates a target's URL and headers and reads its secret file.
pub fn resolve(t: &FanoutTarget, out: &Printer) -> Result<TargetSpec> {
    let url = reqwest::Url::parse(&t.url)
        .map_err(|e| Error::usage(format!("target {}: URL {:?}: {e}", t.name, t.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::usage(format!(
            "target {}: URL must be http or https",
            t.name
        )));
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &t.headers {
        let name = HeaderName::try_from(k.as_str())
            .map_err(|_| Error::usage(format!("target {}: bad header name {k:?}", t.name)))?;
        if matches!(
            name.as_str(),
            "content-type" | "stripe-signature" | "content-length"
        ) {
            return Err(Error::usage(format!(
                "target {}: header {k} is set by the relay",
                t.name
            )));
        }
        let mut value = HeaderValue::try_from(v.as_str())
            .map_err(|_| Error::usage(format!("target {}: bad value for header {k}", t.name)))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let secret = match &t.secret_file {
        Some(file) => {
            let s = secret::read_file(file, &format!("target {} webhook secret", t.name))?;
            if !secret::is_webhook_secret(&s) {
                out.warn(format!(
                    "the webhook secret of target {} does not start with whsec_ (Stripe's always do)",
                    t.name
                ));
            }
            Some(s)
        }
        None => None,
    };
    let matches = t
        .matches
        .iter()
        .map(|(path, v)| (path.clone(), v.values()))
        .collect();
    let route = Route::new(&t.events, &matches)
        .map_err(|e| Error::usage(format!("target {}: {e}", t.name)))?;
    let fingerprint = fingerprint(
        t,
        &route,
        secret.as_ref().map(|s| s.expose_secret().as_bytes()),
    );
    Ok(TargetSpec {
        name: t.name.clone(),
        url: t.url.clone(),
        signer: secret.map(|s| Signer::new(s.expose_secret().as_bytes())),
        headers,
        route,
        fingerprint,
        queue: t.queue.clone(),
    })
}

fn fingerprint(t: &FanoutTarget, route: &Route, secret: Option<&[u8]>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(t.url.as_bytes());
    h.update([0]);
    h.update(route.describe().to_string().as_bytes());
    for (k, v) in &t.headers {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.update([1]);
    h.update(secret.unwrap_or_default());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn parses_name_value_pairs() {
        assert_eq!(
            parse_pair("east=http://a/b?x=1"),
            Ok(pair("east", "http://a/b?x=1"))
        );
        assert!(parse_pair("nameless").unwrap_err().contains("NAME=VALUE"));
        assert!(parse_pair("../x=http://a").unwrap_err().contains("must be"));
        assert!(parse_pair("a=").unwrap_err().contains("empty"));
    }

    #[test]
    fn merges_flags_and_config_with_unique_names() {
        let config = vec![FanoutTarget {
            name: "c".into(),
            url: "http://c".into(),
            ..Default::default()
        }];
        let flags = |targets: Vec<(String, String)>, secrets: Vec<(String, String)>| TargetFlags {
            targets,
            secrets,
            ..Default::default()
        };
        let all = merge(
            &flags(
                vec![pair("a", "http://a"), pair("b", "http://b")],
                vec![pair("b", "/s")],
            ),
            &config,
        )
        .unwrap();
        let names: Vec<_> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(all[1].secret_file, Some(PathBuf::from("/s")));
        let twice = merge(&flags(vec![pair("c", "http://x")], vec![]), &config).unwrap_err();
        assert!(twice.message().contains("defined twice"));
        let orphan = merge(
            &flags(vec![pair("a", "http://a")], vec![pair("z", "/s")]),
            &[],
        )
        .unwrap_err();
        assert!(orphan.message().contains("not a --target"));
        assert!(
            merge(&flags(vec![], vec![]), &[])
                .unwrap_err()
                .message()
                .contains("no targets")
        );
        let routed = TargetFlags {
            targets: vec![pair("a", "http://a")],
            events: vec![("a".into(), vec!["invoice.*".into()])],
            matches: vec![
                ("a".into(), "data.object.metadata.site".into(), "x".into()),
                ("a".into(), "data.object.metadata.site".into(), "y".into()),
            ],
            ..Default::default()
        };
        let a = &merge(&routed, &[]).unwrap()[0];
        assert_eq!(a.events, ["invoice.*"]);
        assert_eq!(a.matches["data.object.metadata.site"].values(), ["x", "y"]);
        let stray = TargetFlags {
            events: vec![("zz".into(), vec!["x".into()])],
            ..routed
        };
        assert!(
            merge(&stray, &[])
                .unwrap_err()
                .message()
                .contains("--target-events names zz")
        );
    }

    #[test]
    fn resolve_checks_url_and_headers_and_fingerprints_changes() {
        let mut t = FanoutTarget {
            name: "a".into(),
            url: "ftp://x".into(),
            ..Default::default()
        };
        assert!(
            resolve(&t, &Printer::silent())
                .unwrap_err()
                .message()
                .contains("http or https")
        );
        t.url = "http://127.0.0.1:1/hook".into();
        let before = resolve(&t, &Printer::silent()).unwrap().fingerprint;
        t.headers.insert("X-Team".into(), "blue".into());
        let spec = resolve(&t, &Printer::silent()).unwrap();
        assert_ne!(spec.fingerprint, before);
        assert_eq!(spec.headers["x-team"], "blue");
        let before = spec.fingerprint;
        t.events = vec!["invoice.*".into()];
        assert_ne!(resolve(&t, &Printer::silent()).unwrap().fingerprint, before);
        t.headers.insert("Stripe-Signature".into(), "x".into());
        assert!(
            resolve(&t, &Printer::silent())
                .unwrap_err()
                .message()
                .contains("set by the relay")
        );
    }
}
