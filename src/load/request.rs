//! One worker's request bytes: built by the slow path (the template's body, `Stripe-Signature`,
//! the head, exactly as a single `events send` makes them) when the signing second changes, and
//! between those spliced in place: the request number's 12 digits written over the id's last 12,
//! the HMAC of the new body hex-encoded over each `v1`. Within one second every other byte is the
//! same (the body's length and `Content-Length` too: the id has a fixed length), so a request
//! costs one HMAC and a few stores: no formatting, no allocation, no copy of the body.

use crate::webhook::fixtures::Prepared;
use crate::webhook::signature::{self, Signer};

use super::IdSource;
use super::conn::Endpoint;

/// What every request of a run is made from.
pub struct Template {
    pub endpoint: Endpoint,
    pub prepared: Prepared,
    pub signers: Vec<Signer>,
    pub ids: IdSource,
}

/// A worker's reused request buffer and where its variable parts sit.
#[derive(Default)]
pub struct Request {
    bytes: Vec<u8>,
    /// The signing second the bytes carry (`None` before the first request).
    timestamp: Option<i64>,
    body_at: usize,
    /// Where the id's 12 request-number digits sit; `None` makes every request take the slow
    /// path (the body does not hold the id exactly once).
    digits_at: Option<usize>,
    /// Where each signer's 64 hex digits sit (none when `-H` replaced `Stripe-Signature`).
    hex_at: Vec<usize>,
    id: String,
    body: String,
    header: String,
}

impl Request {
    /// The bytes of request number `n`, signed at `timestamp`.
    pub fn render(&mut self, template: &Template, n: u64, timestamp: i64) -> &[u8] {
        match self.digits_at {
            Some(at) if self.timestamp == Some(timestamp) => {
                self.bytes[at..at + 12].copy_from_slice(&IdSource::digits(n));
                self.sign(&template.signers, timestamp);
            }
            _ => self.build(template, n, timestamp),
        }
        &self.bytes
    }

    /// The slow path, and where the next requests' variable parts sit.
    fn build(&mut self, template: &Template, n: u64, timestamp: i64) {
        template.ids.write_id(n, &mut self.id);
        template
            .prepared
            .body_into(&mut self.body, &self.id, timestamp);
        signature::header_into(
            &mut self.header,
            timestamp,
            self.body.as_bytes(),
            &template.signers,
        );
        self.bytes.clear();
        template
            .endpoint
            .write_request(&mut self.bytes, self.body.as_bytes(), &self.header);
        self.timestamp = Some(timestamp);
        self.body_at = self.bytes.len() - self.body.len();
        let (head, body) = self.bytes.split_at(self.body_at);
        self.digits_at = only(body, self.id.as_bytes())
            .map(|at| self.body_at + at + self.id.len() - 12)
            .filter(|_| self.id.len() >= 12);
        self.hex_at.clear();
        match only(head, self.header.as_bytes()) {
            // `t=<timestamp>` then `,v1=<64 hex>` per signer.
            Some(at) => {
                let first = at + "t=".len() + itoa::Buffer::new().format(timestamp).len() + 4;
                self.hex_at
                    .extend((0..template.signers.len()).map(|i| first + i * 68));
            }
            // `-H Stripe-Signature: …` replaced it (or the head holds it twice: then build
            // every request this way).
            None if count(head, self.header.as_bytes()) > 0 => self.digits_at = None,
            None => {}
        }
    }

    /// Signs the body in place for each signer.
    fn sign(&mut self, signers: &[Signer], timestamp: i64) {
        for (signer, &at) in signers.iter().zip(&self.hex_at) {
            let mac = signer.sign(timestamp, &self.bytes[self.body_at..]);
            hex::encode_to_slice(mac, &mut self.bytes[at..at + 64])
                .expect("64 hex digits for 32 bytes");
        }
    }
}

/// Where `needle` starts in `hay` when it occurs exactly once.
fn only(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let at = hay.windows(needle.len()).position(|w| w == needle)?;
    (count(hay, needle) == 1).then_some(at)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::webhook::fixtures::{Catalog, RenderOptions};

    fn template(event_type: &str, secrets: &[&[u8]], extra: &[(&str, &[u8])]) -> Template {
        let mut endpoint =
            Endpoint::parse("http://127.0.0.1:9/hook?x=1", Duration::from_secs(1)).unwrap();
        endpoint.set_extra(extra);
        Template {
            endpoint,
            prepared: Catalog::load(None)
                .unwrap()
                .prepare(event_type, &RenderOptions::default())
                .unwrap(),
            signers: secrets.iter().map(|s| Signer::new(s)).collect(),
            ids: IdSource::new(),
        }
    }

    impl Template {
        pub(in crate::load) fn for_tests() -> Template {
            template("customer.created", &[b"whsec_test"], &[])
        }
    }

    /// What the slow path (a single `events send`'s pieces) makes of request `n` at `t`.
    fn slow(t: &Template, n: u64, timestamp: i64) -> Vec<u8> {
        let id = t.ids.id(n);
        let body = t.prepared.body(&id, timestamp);
        let header = signature::header(timestamp, body.as_bytes(), &t.signers);
        let mut out = Vec::new();
        t.endpoint.write_request(&mut out, body.as_bytes(), &header);
        out
    }

    fn same_bytes_as_the_slow_path(t: &Template) {
        let mut request = Request::default();
        let stamps = [1_726_554_052, 1_726_554_052, 1_726_554_053, 999_999_999];
        let numbers = [0, 1, 35, 36, 1_000_007, u64::MAX, 7];
        for (i, &timestamp) in stamps.iter().enumerate() {
            for &n in &numbers {
                let n = n.wrapping_add(i as u64);
                let fast = request.render(t, n, timestamp).to_vec();
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    String::from_utf8(slow(t, n, timestamp)).unwrap(),
                    "request {n} at {timestamp}"
                );
            }
        }
    }

    #[test]
    fn spliced_requests_are_the_slow_paths_bytes() {
        let secret: &[u8] = b"whsec_test";
        same_bytes_as_the_slow_path(&template("customer.created", &[secret], &[]));
        // A thin event (`created` is a date), two secrets during a roll, `-H` headers.
        let two: &[&[u8]] = &[b"whsec_a", b"whsec_bb"];
        let extra: &[(&str, &[u8])] = &[("X-Trace", b"1"), ("user-agent", b"mine")];
        same_bytes_as_the_slow_path(&template("v2.core.event_destination.ping", two, extra));
    }

    #[test]
    fn a_replaced_signature_header_is_kept_as_given() {
        let extra: &[(&str, &[u8])] = &[("stripe-signature", b"t=1,v1=00")];
        let t = template("payment_intent.succeeded", &[b"whsec_x"], extra);
        same_bytes_as_the_slow_path(&t);
        let mut request = Request::default();
        let text = String::from_utf8(request.render(&t, 3, 1_700_000_000).to_vec()).unwrap();
        assert!(
            text.contains("\r\nstripe-signature: t=1,v1=00\r\n"),
            "{text}"
        );
        assert!(request.digits_at.is_some() && request.hex_at.is_empty());
    }

    #[test]
    fn requests_within_a_second_are_spliced_and_signed_anew() {
        let t = template("customer.created", &[b"whsec_x"], &[]);
        let mut request = Request::default();
        let a = request.render(&t, 1, 1_700_000_000).to_vec();
        assert_eq!(request.hex_at.len(), 1, "the signature was found");
        let b = request.render(&t, 2, 1_700_000_000).to_vec();
        assert_eq!(a.len(), b.len());
        let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        // One id digit and (almost surely) most of the 64 hex digits changed, nothing else.
        let (digits, hex) = (request.digits_at.unwrap(), request.hex_at[0]);
        assert!(differ.contains(&(digits + 11)), "{differ:?}");
        assert!(differ.len() > 40, "{differ:?}");
        assert!(
            differ
                .iter()
                .all(|&i| i == digits + 11 || (hex..hex + 64).contains(&i))
        );
    }
}
