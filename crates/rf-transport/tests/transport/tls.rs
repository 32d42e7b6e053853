//! TLS through the reqwest transport: the trust store is read only for
//! `https://` (see `tls.rs`), and a certificate no trusted root signed is
//! still refused before any request is sent.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use rf_transport::{ErrorKind, Request, Transport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::support::{http, url};

/// A TLS server on loopback presenting a self-signed certificate for
/// `localhost` and `127.0.0.1`; it accepts one connection and returns how
/// many bytes of request it could read (none when the client refused the
/// certificate).
fn self_signed_server() -> (u16, std::thread::JoinHandle<usize>) {
    let cert =
        CertificateDer::from(include_bytes!("../fixtures/self-signed-localhost.crt.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("../fixtures/self-signed-localhost.key.der").to_vec(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 4096];
        tls.read(&mut buf).unwrap_or(0)
    });
    (port, server)
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_before_the_request_is_sent() {
    let (port, server) = self_signed_server();
    let transport = http();
    let err = transport
        .send(Request::get(url(&format!("https://127.0.0.1:{port}/x"))).query("api_key", "k"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::Connect, "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert_eq!(server.join().unwrap(), 0, "no request reached the server");
}
