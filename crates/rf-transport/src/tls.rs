//! Certificate checks that read the system's trust store on first use.
//!
//! `rustls_platform_verifier::Verifier::new` reads every root certificate
//! of the system when it is built (on Linux the CA bundle and the whole
//! certificate directory: a few milliseconds, the largest part of rf's
//! start-up). A run that only speaks plain `http://` — the local emulator —
//! never needs them. [`LazyVerifier`] builds the platform verifier on the
//! first certificate it is asked to check, once per transport, and hands
//! every check to it: what is accepted or refused is exactly what the
//! platform verifier decides. If the trust store cannot be read, the error
//! comes with the first `https://` connection instead of at start-up, and
//! plain `http://` keeps working.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// The platform verifier, built on first use (see the module docs).
#[derive(Debug)]
pub(crate) struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    platform: OnceLock<Result<Verifier, rustls::Error>>,
}

impl LazyVerifier {
    /// A verifier for `provider`'s algorithms; nothing is read yet.
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Self {
        LazyVerifier {
            provider,
            platform: OnceLock::new(),
        }
    }

    /// The platform verifier, built (reading the trust store) on the first
    /// call; a failure to build it is the answer to every check.
    fn platform(&self) -> Result<&Verifier, rustls::Error> {
        self.platform
            .get_or_init(|| Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the trust store was read.
    #[cfg(test)]
    fn is_loaded(&self) -> bool {
        self.platform.get().is_some()
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.platform()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform()?.verify_tls13_signature(message, cert, dss)
    }

    /// Offered in every ClientHello, before any certificate arrives: taken
    /// from the crypto provider, as the platform verifier itself does, so
    /// that no trust store is read for it.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn nothing_is_read_until_a_certificate_is_checked_and_then_it_is_checked() {
        let lazy = LazyVerifier::new(provider());
        // What a ClientHello needs does not read the trust store, and it is
        // what the platform verifier would offer.
        let schemes = lazy.supported_verify_schemes();
        assert!(!lazy.is_loaded());
        assert!(!schemes.is_empty());
        if let Ok(platform) = Verifier::new(provider()) {
            assert_eq!(schemes, platform.supported_verify_schemes());
        }
        // A self-signed certificate is refused, by the platform's roots.
        let cert = CertificateDer::from(
            &include_bytes!("../tests/fixtures/self-signed-localhost.crt.der")[..],
        );
        let name = ServerName::try_from("localhost").unwrap();
        let verdict = lazy.verify_server_cert(&cert, &[], &name, &[], UnixTime::now());
        assert!(lazy.is_loaded());
        assert!(
            matches!(
                verdict,
                Err(rustls::Error::InvalidCertificate(_) | rustls::Error::General(_))
            ),
            "{verdict:?}"
        );
        // Built once: the second check gives the same verdict.
        let again = lazy.verify_server_cert(&cert, &[], &name, &[], UnixTime::now());
        assert_eq!(format!("{verdict:?}"), format!("{again:?}"));
    }
}
