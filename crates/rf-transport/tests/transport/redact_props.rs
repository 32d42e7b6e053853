//! Properties of `redact_url`: a secret value placed in any secret query
//! parameter of any URL (or of a message quoting it) never survives;
//! URLs without secrets pass unchanged; redacting twice changes nothing;
//! arbitrary text never makes it panic.

use proptest::prelude::*;
use rf_transport::redact_url;

const SECRET_NAMES: &[&str] = &[
    "api_key",
    "API_KEY",
    "Api_Key",
    "key",
    "token",
    "sig",
    "signature",
    "Signature",
    "X-Goog-Signature",
    "x-amz-signature",
    "X-Amz-Security-Token",
    "access_token",
];

const PLAIN_NAMES: &[&str] = &[
    "pageSize",
    "fileName",
    "displayName",
    "X-Goog-Date",
    "X-Goog-Expires",
    "X-Amz-Date",
    "Expires",
    "monkey",
    "my_api_key",
    "keyframe",
];

fn name(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(list).prop_map(str::to_string)
}

/// A query value as it appears in a URL (percent-encoding included).
fn value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~%+-]{0,12}"
}

/// A secret long and odd enough not to appear by chance elsewhere.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{6,16}".prop_map(|s| format!("S3cr{s}Q"))
}

fn plain_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("http"), Just("https")],
        "[a-z]{1,10}(\\.[a-z]{2,5})?",
        proptest::option::of(1024u16..65535),
        proptest::collection::vec("[A-Za-z0-9_.-]{1,10}", 0..4),
        proptest::collection::vec((name(PLAIN_NAMES), value()), 0..4),
    )
        .prop_map(|(scheme, host, port, segments, params)| {
            let mut url = format!("{scheme}://{host}");
            if let Some(p) = port {
                url.push_str(&format!(":{p}"));
            }
            url.push('/');
            url.push_str(&segments.join("/"));
            if !params.is_empty() {
                let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                url.push('?');
                url.push_str(&q.join("&"));
            }
            url
        })
}

proptest! {
    #[test]
    fn secrets_never_survive(
        base in plain_url(),
        secret_name in name(SECRET_NAMES),
        secret in secret(),
        position in 0usize..5,
        extra in proptest::collection::vec((name(PLAIN_NAMES), value()), 0..3),
        wrap in 0usize..4,
    ) {
        let mut params: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let at = position.min(params.len());
        params.insert(at, format!("{secret_name}={secret}"));
        let (head, existing) = match base.split_once('?') {
            Some((h, q)) => (h.to_string(), format!("{q}&")),
            None => (base.clone(), String::new()),
        };
        let url = format!("{head}?{existing}{}", params.join("&"));
        let text = match wrap {
            0 => url.clone(),
            1 => format!("error sending request for url ({url})"),
            2 => format!("{{\"uploadURL\": \"{url}\"}}"),
            _ => format!("see {url} and retry"),
        };
        let out = redact_url(&text);
        prop_assert!(!out.contains(&secret), "{} -> {}", text, out);
        prop_assert!(out.contains(&format!("{secret_name}=REDACTED")), "{}", out);
        prop_assert_eq!(redact_url(&out), out.clone());
    }

    #[test]
    fn signed_path_tokens_never_survive(base in plain_url(), token in secret()) {
        let (head, query) = base.split_once('?').unwrap_or((&base, ""));
        let origin: String = head.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        let url = format!("{origin}/_signed/{token}.{token}?{query}");
        let out = redact_url(&url);
        prop_assert!(!out.contains(&token), "{}", out);
    }

    #[test]
    fn urls_without_secrets_are_unchanged(url in plain_url()) {
        prop_assert_eq!(redact_url(&url), url);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let once = redact_url(&text);
        // Redacting is idempotent.
        prop_assert_eq!(redact_url(&once), once.clone());
    }
}
