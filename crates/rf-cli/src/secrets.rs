//! The last line of defence for secrets: every line `rf` writes (results,
//! notes, warnings, log lines, the error line) passes through [`scrub`],
//! which masks the API key and the webhook token given to this process,
//! whatever form a server or library quoted them in. Libraries already
//! redact URLs; this catches what they cannot know is secret (an error body
//! that echoes the key, a debug line of an HTTP library).

use std::borrow::Cow;
use std::sync::OnceLock;

/// What a masked secret is replaced with.
pub(crate) const REDACTED: &str = "REDACTED";

/// Secrets shorter than this are not masked (they would mangle ordinary text).
const MIN_LEN: usize = 4;

static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Registers the secrets of this process (once; later calls are ignored).
pub(crate) fn register<I, S>(secrets: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut list: Vec<String> = secrets
        .into_iter()
        .map(Into::into)
        .map(|s| s.trim().to_owned())
        .filter(|s| s.len() >= MIN_LEN)
        .collect();
    // Longest first, so a secret containing another is masked whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    list.dedup();
    let _ = SECRETS.set(list);
}

/// `text` with every registered secret masked.
pub(crate) fn scrub(text: &str) -> Cow<'_, str> {
    scrub_with(text, SECRETS.get().map_or(&[], Vec::as_slice))
}

fn scrub_with<'a>(text: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// Like [`scrub`] for bytes that should be UTF-8 (log lines); other bytes
/// pass through unchanged.
pub(crate) fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match scrub(text) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
        Err(_) => Cow::Borrowed(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let secrets = vec!["key-123456".to_owned(), "key-1".to_owned()];
        assert_eq!(
            scrub_with("a key-123456 b key-1 c", &secrets),
            "a REDACTED b REDACTED c"
        );
        assert!(matches!(
            scrub_with("nothing here", &secrets),
            Cow::Borrowed(_)
        ));
        assert_eq!(scrub_with("x", &[]), "x");
    }
}
