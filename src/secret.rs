//! Secrets: loaded only from files or environment variables, held in `SecretString` (which
//! redacts itself in `Debug`), written only atomically with mode 0600, and scrubbed from any text
//! that leaves the process as a last line of defence.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};

use crate::config::vars::Var;
use crate::error::{Error, Result};

/// Reads a Stripe secret (a key, a webhook signing secret) from a file: trimmed (files usually
/// end in a newline), never empty, and only of Stripe's alphabet (see `check_alphabet`). Only a
/// regular file is read, and errors never quote its content.
pub fn read_file(path: &Path, what: &str) -> Result<SecretString> {
    let value = read_password_file(path, what)?;
    check_alphabet(value.expose_secret())
        .map_err(|why| Error::usage(format!("{what} file {} {why}", path.display())))?;
    Ok(value)
}

/// Reads any secret (a buyer's password) from a file: trimmed, never empty, any characters.
pub fn read_password_file(path: &Path, what: &str) -> Result<SecretString> {
    let raw = SecretString::from(crate::files::read_text(path, &format!("{what} file"))?);
    let value = raw.expose_secret().trim();
    if value.is_empty() {
        return Err(Error::usage(format!(
            "{what} file {} is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(value.to_owned()))
}

/// Stripe's keys and signing secrets are letters, digits and `_` (`sk_test_…`, `whsec_…`).
/// Anything else inside one (a newline, a NUL, a space, a zero-width space, a byte-order mark
/// from an editor) is a copy-paste accident that would sign with a secret Stripe does not have
/// (stripe-node itself only warns about whitespace): refused, naming the position and what the
/// character is, never the value.
pub fn check_alphabet(secret: &str) -> std::result::Result<(), String> {
    let Some((i, c)) = secret
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
    else {
        return Ok(());
    };
    let kind = match c {
        '\u{feff}' => "a byte-order mark (the file was saved as UTF-8 with BOM)".to_owned(),
        '\n' | '\r' => "a line break".to_owned(),
        '\0' => "a NUL byte".to_owned(),
        ' ' | '\t' => "a space or tab".to_owned(),
        c if c.is_control() || !c.is_ascii() && c.is_whitespace() => {
            format!("an invisible character (U+{:04X})", c as u32)
        }
        '\u{200b}'..='\u{200f}' | '\u{2060}' => {
            format!("an invisible character (U+{:04X})", c as u32)
        }
        c if c.is_ascii() => format!("a {c:?}"),
        c => format!("a non-ASCII character (U+{:04X})", c as u32),
    };
    Err(format!(
        "holds {kind} at position {} of {}: Stripe secrets are letters, digits and _ only",
        i + 1,
        secret.chars().count()
    ))
}

/// Reads any secret (a buyer's password) from an environment variable (trimmed); `None` when
/// unset.
pub fn password_from_env(var: &Var, what: &str) -> Result<Option<SecretString>> {
    let name = var.name;
    match var.string() {
        Some(v) if v.trim().is_empty() => Err(Error::usage(format!("{what} in {name} is empty"))),
        Some(v) => Ok(Some(SecretString::from(v.trim().to_owned()))),
        None => Ok(None),
    }
}

/// Reads a Stripe secret from an environment variable (trimmed, Stripe's alphabet only);
/// `None` when unset.
pub fn from_env(var: &Var, what: &str) -> Result<Option<SecretString>> {
    let name = var.name;
    match var.string() {
        Some(v) if v.trim().is_empty() => Err(Error::usage(format!("{what} in {name} is empty"))),
        Some(v) => {
            check_alphabet(v.trim())
                .map_err(|why| Error::usage(format!("{what} in {name} {why}")))?;
            Ok(Some(SecretString::from(v.trim().to_owned())))
        }
        None => Ok(None),
    }
}

/// Webhook signing secrets from `--secret-file` (repeatable), else from `env_var`.
pub fn webhook_secrets(files: &[PathBuf], env_var: &Var) -> Result<Vec<SecretString>> {
    let secrets = if files.is_empty() {
        match from_env(env_var, "webhook secret")? {
            Some(s) => vec![s],
            None => {
                return Err(Error::usage(format!(
                    "no webhook secret: give --secret-file FILE or set {}",
                    env_var.name
                )));
            }
        }
    } else {
        files
            .iter()
            .map(|f| read_file(f, "webhook secret"))
            .collect::<Result<Vec<_>>>()?
    };
    Ok(secrets)
}

/// Whether a secret looks like Stripe's webhook signing secrets (`whsec_…`).
pub fn is_webhook_secret(secret: &SecretString) -> bool {
    secret.expose_secret().starts_with("whsec_")
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// A fresh webhook secret in Stripe's format, from the operating system's CSPRNG.
pub fn generate_webhook_secret() -> SecretString {
    SecretString::from(format!("whsec_{}", random_alnum(32)))
}

/// Random `[A-Za-z0-9]` characters from the OS CSPRNG, for ids and secrets. One `getrandom`
/// call per 64 bytes (not per character) keeps event ids cheap in load mode; bytes >= 248 are
/// dropped so that every character is equally likely.
pub fn random_alnum(len: usize) -> String {
    use rand::TryRngCore;
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rand::rngs::OsRng
            .try_fill_bytes(&mut buf)
            .expect("the operating system's random number generator works");
        for &b in buf.iter().filter(|&&b| b < 248).take(len - out.len()) {
            out.push(ALPHABET[usize::from(b % 62)] as char);
        }
    }
    out
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename) with
/// mode 0600, so a reader never sees half a file and no other user can read it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".stripe-ops-")
        .permissions(private_permissions())
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(unix)]
fn private_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o600)
}

#[cfg(not(unix))]
fn private_permissions() -> std::fs::Permissions {
    std::fs::metadata(".").unwrap().permissions()
}

/// True when a file can be read by group or others.
#[cfg(unix)]
pub fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
pub fn readable_by_others(_path: &Path) -> bool {
    false
}

const SECRET_PREFIXES: [&str; 5] = ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"];

/// Replaces anything that looks like a Stripe secret with `[REDACTED]`, and the password of a
/// URL (`scheme://user:password@host`) with `***`. A safety net for every byte printed (text
/// from outside: HTTP answers, SDK errors; URLs users gave with credentials); secrets we hold
/// are never formatted in the first place.
pub fn scrub(text: &str) -> Cow<'_, str> {
    match scrub_url_passwords(text) {
        Cow::Borrowed(t) => scrub_stripe(t),
        Cow::Owned(t) => Cow::Owned(scrub_stripe(&t).into_owned()),
    }
}

/// `scheme://user:password@` becomes `scheme://user:***@` (the user name is not secret; the
/// password is cut at the last `@` before the host, as URL parsers read it).
fn scrub_url_passwords(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#` or whitespace (or a quote, in JSON).
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority
            .rfind('@')
            .and_then(|a| authority[..a].find(':').map(|c| (c, a)))
        {
            Some((colon, at)) if at > colon + 1 => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn scrub_stripe(text: &str) -> Cow<'_, str> {
    if !SECRET_PREFIXES.iter().any(|p| text.contains(p)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, prefix)) = SECRET_PREFIXES
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min_by_key(|(i, _)| *i)
    {
        let tail = &rest[at + prefix.len()..];
        let end = tail
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(tail.len());
        out.push_str(&rest[..at]);
        // A bare prefix ("starts with whsec_") is prose, not a secret.
        out.push_str(if end == 0 { prefix } else { "[REDACTED]" });
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_every_kind_of_secret() {
        let text = "key sk_test_abc123 and whsec_XYZ, rk_live_9 end";
        assert_eq!(scrub(text), "key [REDACTED] and [REDACTED], [REDACTED] end");
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            scrub("must start with whsec_ (always)"),
            "must start with whsec_ (always)"
        );
    }

    #[test]
    fn scrub_hides_url_passwords_and_keeps_the_rest() {
        assert_eq!(
            scrub("POST http://u:pa:ss@wd@host:8080/hook failed; see https://x.example/a@b"),
            "POST http://u:***@host:8080/hook failed; see https://x.example/a@b"
        );
        assert_eq!(
            scrub(r#"{"to":"https://ci:s3cr3t@app.example/api?x=1"}"#),
            r#"{"to":"https://ci:***@app.example/api?x=1"}"#
        );
        assert!(matches!(
            scrub("http://user@host/ and mail a@b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(scrub("https://u:sk_test_abc@h/"), "https://u:***@h/");
        let mut strings = crate::fuzz::Strings::new(0x5c2b_0001);
        for _ in 0..3000 {
            let t = strings.drawn_from(
                &["://", "@", ":", "/", "a", "é", " ", "\"", "sk_test_x"],
                14,
            );
            let _ = scrub(&t);
        }
    }

    #[test]
    fn read_file_trims_and_rejects_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "  whsec_abc\n").unwrap();
        assert_eq!(
            read_file(&p, "webhook secret").unwrap().expose_secret(),
            "whsec_abc"
        );
        std::fs::write(&p, " \n").unwrap();
        let e = read_file(&p, "webhook secret").unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(e.message().contains("is empty"));
    }

    #[test]
    fn invisible_junk_in_a_secret_is_refused_by_position_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        for (content, says) in [
            ("whsec_abc\ndef", "a line break at position 10"),
            ("whsec_ab\0c", "a NUL byte at position 9"),
            ("whsec_ab c", "a space or tab at position 9"),
            ("whsec_ab\u{200b}c", "U+200B"),
            ("\u{feff}whsec_abc", "byte-order mark"),
        ] {
            std::fs::write(&p, content).unwrap();
            let e = read_file(&p, "webhook secret").unwrap_err();
            assert_eq!(e.exit.code(), 2);
            assert!(e.message().contains(says), "{content:?}: {}", e.message());
            assert!(!e.message().contains("whsec_ab"), "{}", e.message());
        }
        std::fs::write(&p, "whsec_abc\r\n").unwrap();
        assert!(read_file(&p, "webhook secret").is_ok());
        std::fs::write(&p, "pass word ü\n").unwrap();
        assert!(read_password_file(&p, "buyer password").is_ok());
    }

    #[test]
    fn write_private_is_0600_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/receipt.json");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!readable_by_others(&p));
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn random_alnum_has_the_length_and_alphabet_asked_for() {
        for len in [0, 1, 24, 63, 200] {
            let s = random_alnum(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        let long = random_alnum(10_000);
        assert!(long.contains('A') && long.contains('z') && long.contains('9'));
    }

    #[test]
    fn generated_secret_looks_like_stripes() {
        let s = generate_webhook_secret();
        assert!(s.expose_secret().starts_with("whsec_"));
        assert_eq!(s.expose_secret().len(), 38);
    }
}
