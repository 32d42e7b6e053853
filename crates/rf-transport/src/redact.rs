//! Secret masking: the one place that decides what of a URL, header or
//! message may be shown.
//!
//! [`redact_url`] is applied to every URL and message this crate puts into a
//! `Debug`/`Display` string, an error or a tracing event. It masks
//!
//! * the values of secret query parameters (`api_key`, `key`, `token`,
//!   `access_token`, `sig`, `signature`, `X-Goog-Signature`,
//!   `X-Amz-Signature`, `X-Amz-Security-Token`, `X-Amz-Credential`,
//!   `password`, `secret`, `client_secret`; names compared without regard to
//!   case or percent-encoding), wherever `name=value` follows `?`, `&`, `;`,
//!   white space, a quote or the start of the text;
//! * the token of the emulator's signed URLs (`/_signed/<token>`), which is
//!   itself the credential;
//! * the password of `user:password@host`.
//!
//! It works on any text, not only on a well-formed URL, so that it can also
//! clean a message that merely contains a URL.

use http::{HeaderName, HeaderValue};

/// What a masked value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Query parameter names whose values are secrets (lower case).
const SECRET_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "sig",
    "signature",
    "x-goog-signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
    "password",
    "secret",
    "client_secret",
];

/// Header names whose values are secrets (lower case).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-amz-security-token",
];

/// Path prefix of the emulator's signed URLs; the segment after it is a credential.
const SIGNED_PATH: &str = "/_signed/";

/// Characters that end a query value or a path token.
fn ends_value(c: char) -> bool {
    matches!(
        c,
        '&' | '#' | '"' | '\'' | '<' | '>' | '\\' | ')' | ',' | ';' | '`'
    ) || c.is_whitespace()
}

/// Characters after which a `name=value` pair may start.
fn starts_pair(c: char) -> bool {
    matches!(c, '?' | '&' | ';' | '"' | '\'' | '(' | ',' | '{' | '`') || c.is_whitespace()
}

/// Whether a query parameter called `name` carries a secret.
///
/// The name is compared case-insensitively after percent-decoding, so
/// `API_KEY` and `api%5Fkey` are secret too.
pub fn is_secret_param(name: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let lower = decoded.to_ascii_lowercase();
    SECRET_PARAMS.contains(&lower.as_str())
}

/// Whether a header called `name` carries a secret.
pub fn is_secret_header(name: &HeaderName) -> bool {
    SECRET_HEADERS.contains(&name.as_str())
}

/// Masks the secrets in a URL, or in any text containing URLs.
///
/// ```
/// use rf_transport::redact_url;
///
/// assert_eq!(
///     redact_url("https://api.roboflow.com/ws/batches?api_key=abc123&pageSize=10"),
///     "https://api.roboflow.com/ws/batches?api_key=REDACTED&pageSize=10",
/// );
/// assert_eq!(
///     redact_url("https://storage.googleapis.com/b/o.tar?X-Goog-Signature=f00d&X-Goog-Date=1"),
///     "https://storage.googleapis.com/b/o.tar?X-Goog-Signature=REDACTED&X-Goog-Date=1",
/// );
/// assert_eq!(
///     redact_url("http://127.0.0.1:9000/_signed/7b22.9f3a?x=1"),
///     "http://127.0.0.1:9000/_signed/REDACTED?x=1",
/// );
/// ```
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        // `/_signed/<token>`: keep the prefix, mask the token.
        if c == '/' && starts_with_ignore_case(rest, SIGNED_PATH) {
            out.push_str(&rest[..SIGNED_PATH.len()]);
            rest = &rest[SIGNED_PATH.len()..];
            let end = rest
                .find(|c: char| c == '?' || ends_value(c))
                .unwrap_or(rest.len());
            if end > 0 {
                out.push_str(REDACTED);
            }
            rest = &rest[end..];
            prev = Some('/');
            continue;
        }
        // `scheme://user:password@host`: mask the password.
        if c == ':' && rest.starts_with("://") {
            out.push_str("://");
            rest = &rest[3..];
            let authority_end = rest
                .find(|c: char| matches!(c, '/' | '?' | '#') || ends_value(c))
                .unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            if let Some(at) = authority.rfind('@') {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                rest = &rest[at + 1..];
            }
            prev = Some('/');
            continue;
        }
        // `name=value` where name is a secret parameter.
        if prev.is_none_or(starts_pair)
            && let Some(eq) = param_name_len(rest)
        {
            let name = &rest[..eq];
            if is_secret_param(name) {
                out.push_str(name);
                out.push('=');
                let value = &rest[eq + 1..];
                let end = value.find(ends_value).unwrap_or(value.len());
                if end > 0 {
                    out.push_str(REDACTED);
                }
                rest = &value[end..];
                prev = Some('=');
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        prev = Some(c);
    }
    out
}

/// If `text` starts with `name=` (name made of URL-safe characters), the
/// length of `name`.
fn param_name_len(text: &str) -> Option<usize> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '%')))
        .unwrap_or(text.len());
    (end > 0 && text[end..].starts_with('=')).then_some(end)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// A header value fit to show: secret headers (`Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-Api-Key`, ...) become
/// [`REDACTED`]; other values pass through [`redact_url`] (a `Location`
/// header may hold a signed URL).
///
/// ```
/// use rf_transport::{redact_header, HeaderName, HeaderValue};
///
/// let auth = HeaderName::from_static("authorization");
/// assert_eq!(redact_header(&auth, &HeaderValue::from_static("Bearer s3cr3t")), "REDACTED");
/// let ct = HeaderName::from_static("content-type");
/// assert_eq!(redact_header(&ct, &HeaderValue::from_static("image/jpeg")), "image/jpeg");
/// ```
pub fn redact_header(name: &HeaderName, value: &HeaderValue) -> String {
    if is_secret_header(name) || value.is_sensitive() {
        return REDACTED.to_string();
    }
    redact_url(&String::from_utf8_lossy(value.as_bytes()))
}

/// `Debug` of a header map with every value passed through [`redact_header`].
pub(crate) struct RedactedHeaders<'a>(pub(crate) &'a http::HeaderMap);

impl std::fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(name, value)| (name.as_str(), redact_header(name, value))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_api_key_anywhere_in_the_query() {
        assert_eq!(
            redact_url("http://h/p?a=1&api_key=k&b=2"),
            "http://h/p?a=1&api_key=REDACTED&b=2"
        );
        assert_eq!(
            redact_url("http://h/p?api_key=k"),
            "http://h/p?api_key=REDACTED"
        );
        assert_eq!(
            redact_url("http://h/p?API_KEY=k#x"),
            "http://h/p?API_KEY=REDACTED#x"
        );
        assert_eq!(
            redact_url("http://h/p?api%5Fkey=k"),
            "http://h/p?api%5Fkey=REDACTED"
        );
        assert_eq!(redact_url("http://h/p?api_key="), "http://h/p?api_key=");
    }

    #[test]
    fn keeps_lookalike_parameters() {
        assert_eq!(
            redact_url("http://h/p?my_api_key=1&keyframe=2&design=3&monkey=4"),
            "http://h/p?my_api_key=1&keyframe=2&design=3&monkey=4"
        );
    }

    #[test]
    fn masks_signatures() {
        for name in [
            "X-Goog-Signature",
            "X-Amz-Signature",
            "Signature",
            "sig",
            "signature",
            "token",
            "X-Amz-Security-Token",
        ] {
            let url = format!("https://b.example/o?Expires=9&{name}=abc%2Fdef&x=1");
            assert_eq!(
                redact_url(&url),
                format!("https://b.example/o?Expires=9&{name}=REDACTED&x=1"),
                "{name}"
            );
        }
    }

    #[test]
    fn masks_signed_path_tokens_and_passwords() {
        assert_eq!(
            redact_url("http://127.0.0.1:1/_signed/abc.def?a=1&sig=zz"),
            "http://127.0.0.1:1/_signed/REDACTED?a=1&sig=REDACTED"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:1/_signed/abc.def"),
            "http://127.0.0.1:1/_signed/REDACTED"
        );
        assert_eq!(
            redact_url("https://bob:hunter2@proxy.example:8080/x"),
            "https://bob:REDACTED@proxy.example:8080/x"
        );
        assert_eq!(
            redact_url("https://bob@proxy.example/x"),
            "https://bob@proxy.example/x"
        );
    }

    #[test]
    fn masks_urls_inside_messages() {
        let msg = "error sending request for url (http://h/x?api_key=canary): broken; \
                   see \"https://b/o?sig=s1\" and api_key=canary2";
        let out = redact_url(msg);
        assert!(!out.contains("canary"), "{out}");
        assert!(!out.contains("s1"), "{out}");
        assert!(out.contains("error sending request for url (http://h/x?api_key=REDACTED)"));
    }

    #[test]
    fn keeps_unicode_and_plain_text() {
        let s = "fichier été.jpg — ok";
        assert_eq!(redact_url(s), s);
        assert_eq!(redact_url(""), "");
    }

    #[test]
    fn header_redaction() {
        let v = HeaderValue::from_static("https://b/o?X-Amz-Signature=abc");
        assert_eq!(
            redact_header(&HeaderName::from_static("location"), &v),
            "https://b/o?X-Amz-Signature=REDACTED"
        );
        let mut sensitive = HeaderValue::from_static("whatever");
        sensitive.set_sensitive(true);
        assert_eq!(
            redact_header(&HeaderName::from_static("x-custom"), &sensitive),
            REDACTED
        );
        assert_eq!(
            redact_header(
                &HeaderName::from_static("proxy-authorization"),
                &HeaderValue::from_static("Basic Zm9v")
            ),
            REDACTED
        );
    }
}
