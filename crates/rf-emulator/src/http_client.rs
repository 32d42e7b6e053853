//! The emulator's outgoing HTTP client (reference fetches, webhook delivery).
//!
//! The emulator only ever talks to loopback over plain HTTP, but reqwest is
//! built with rustls in this workspace and panics when no crypto provider is
//! chosen. We hand it a rustls configuration with the ring provider and an
//! empty root store, so building a client never depends on process-wide
//! state and HTTPS peers are refused (no trusted roots) rather than crashing.
//!
//! [`check_destination`] is the one check of where the emulator may send a
//! request: loopback hosts, plus hosts the operator allowed by name (webhooks
//! only). Every client here is built without following redirects.

use std::sync::Arc;

/// A client builder with TLS configured explicitly (ring, no roots) that
/// never follows redirects.
pub(crate) fn builder() -> reqwest::ClientBuilder {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let base = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(tls) => base.tls_backend_preconfigured(
            tls.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
        Err(_) => base,
    }
}

/// True when `url` points at this machine (the only place the emulator
/// fetches references from).
pub(crate) fn is_loopback_url(url: &str) -> bool {
    check_destination(url, &[]).is_ok()
}

/// Checks that `url` is an `http(s)` URL whose host is loopback or one of
/// `allowed_hosts` (compared without case); the error says why not.
pub(crate) fn check_destination(url: &str, allowed_hosts: &[String]) -> Result<(), String> {
    let Ok(u) = url::Url::parse(url) else {
        return Err("not a valid URL".to_string());
    };
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http or https", u.scheme()));
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err("the URL has no host".to_string()),
    };
    let host = u.host_str().unwrap_or_default();
    let host_bare = host.trim_start_matches('[').trim_end_matches(']');
    let allowed = allowed_hosts.iter().any(|a| {
        let a = a.trim_start_matches('[').trim_end_matches(']');
        a.eq_ignore_ascii_case(host_bare)
    });
    if loopback || allowed {
        Ok(())
    } else {
        Err(format!(
            "host {host} is not loopback and not allowed (--allow-webhook-host)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:8080/a.png"));
        assert!(is_loopback_url("http://localhost/a.png"));
        assert!(is_loopback_url("http://[::1]:9/a"));
        assert!(!is_loopback_url("https://files.example.net/a.png"));
        assert!(!is_loopback_url("http://10.0.0.1/a.png"));
        assert!(!is_loopback_url("file:///etc/passwd"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn allowed_hosts_widen_the_destinations() {
        let allowed = vec!["Hooks.Example.net".to_string(), "10.0.0.7".to_string()];
        assert!(check_destination("https://hooks.example.net/h", &allowed).is_ok());
        assert!(check_destination("http://10.0.0.7:9/h", &allowed).is_ok());
        let refused = check_destination("http://10.0.0.8/h", &allowed).unwrap_err();
        assert!(refused.contains("10.0.0.8"), "{refused}");
        assert!(check_destination("ftp://hooks.example.net/h", &allowed).is_err());
    }
}
