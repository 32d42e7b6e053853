//! The emulator's outgoing HTTP client (reference fetches, webhook delivery).
//!
//! The emulator only ever talks to loopback over plain HTTP, but reqwest is
//! built with rustls in this workspace and panics when no crypto provider is
//! chosen. We hand it a rustls configuration with the ring provider and an
//! empty root store, so building a client never depends on process-wide
//! state and HTTPS peers are refused (no trusted roots) rather than crashing.

use std::sync::Arc;

/// A client builder with TLS configured explicitly (ring, no roots).
pub(crate) fn builder() -> reqwest::ClientBuilder {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let base = reqwest::Client::builder().no_proxy();
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
