//! Proxies: an explicit proxy is used; proxy settings from the environment
//! stay on by default, except for loopback destinations (checked in a child
//! process, because the environment is process-wide).

use rf_transport::{Request, ReqwestTransport, Transport};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::url;

/// A host that does not exist: only a proxy can answer for it.
const NOWHERE: &str = "http://rf-proxy-test.invalid/probe";

async fn proxy_server() -> MockServer {
    let proxy = MockServer::start().await;
    // A plain-HTTP proxy receives the request in absolute form; wiremock
    // matches on its path.
    Mock::given(method("GET"))
        .and(path("/probe"))
        .respond_with(ResponseTemplate::new(200).set_body_string("via proxy"))
        .mount(&proxy)
        .await;
    proxy
}

#[test]
fn proxy_passwords_are_not_shown() {
    let builder = ReqwestTransport::builder().proxy("http://bob:hunter2@127.0.0.1:1");
    let shown = format!("{builder:?} {:?}", builder.clone().build().unwrap());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("bob:REDACTED@"), "{shown}");
}

#[tokio::test]
async fn explicit_proxy_is_used() {
    let proxy = proxy_server().await;
    let http = ReqwestTransport::builder()
        .proxy(proxy.uri())
        .build()
        .unwrap();
    let answer = http.send(Request::get(url(NOWHERE))).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "via proxy");
    let got = proxy.received_requests().await.unwrap();
    assert_eq!(got[0].headers.get("host").unwrap(), "rf-proxy-test.invalid");
}

/// Runs in a child process with `HTTP_PROXY` set; a no-op otherwise.
#[tokio::test]
async fn env_proxy_child() {
    let Some(direct) = std::env::var_os("RF_TRANSPORT_PROXY_CHILD") else {
        return;
    };
    let http = ReqwestTransport::new().unwrap();
    let answer = http.send(Request::get(url(NOWHERE))).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "via proxy");
    // Loopback is reached directly, not through the proxy.
    let direct = format!("{}/local", direct.to_string_lossy());
    let answer = http.send(Request::get(url(&direct))).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "direct");
}

#[tokio::test]
async fn proxy_from_the_environment_is_honoured_by_default() {
    let proxy = proxy_server().await;
    let target = MockServer::start().await;
    Mock::given(path("/local"))
        .respond_with(ResponseTemplate::new(200).set_body_string("direct"))
        .expect(1)
        .mount(&target)
        .await;
    let exe = std::env::current_exe().unwrap();
    let out = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "transport::proxy::env_proxy_child",
            "--nocapture",
        ])
        .env("RF_TRANSPORT_PROXY_CHILD", target.uri())
        .env("HTTP_PROXY", proxy.uri())
        .env("http_proxy", proxy.uri())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(proxy.received_requests().await.unwrap().len(), 1);
}
