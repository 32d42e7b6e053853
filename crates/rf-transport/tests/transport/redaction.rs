//! A canary API key, bearer token and URL signature go through every path
//! that shows text — errors, `Debug`, `Display`, tracing output at TRACE
//! level from every crate (reqwest and hyper included) — and never appear.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rf_transport::{
    Body, ErrorKind, HeaderName, HeaderValue, Method, MockTransport, RecordingSleeper, Request,
    Response, RetryPolicy, Retrying, Transport,
};
use tracing_subscriber::fmt::MakeWriter;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{self, CANARY, http, url};

/// Every log line, collected.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Secrets used in this test: the key, a bearer token, a signature, an
/// emulator signed-URL token.
const BEARER: &str = "bearercanary-51c2";
const SIG: &str = "sigcanary-0d9e";
const TOKEN: &str = "tokencanary.8b7a";

fn assert_clean(what: &str, text: &str) {
    for secret in [CANARY, BEARER, SIG, TOKEN] {
        assert!(!text.contains(secret), "{what} leaks {secret}:\n{text}");
    }
}

fn secret_request(base: &str) -> Request {
    Request::get(url(&format!(
        "{base}/_signed/{TOKEN}?X-Goog-Signature={SIG}"
    )))
    .query("api_key", CANARY)
    .header(
        HeaderName::from_static("authorization"),
        HeaderValue::try_from(format!("Bearer {BEARER}")).unwrap(),
    )
}

/// Runs the scenario in a child process: tracing caches per-callsite
/// interest process-wide, so events first hit by tests running in parallel
/// (with no subscriber) could be missed by a thread-local one here.
#[test]
fn canary_never_appears_in_errors_debug_or_logs() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "transport::redaction::canary_scenario_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RF_TRANSPORT_CANARY_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(stdout.contains("canary scenario checked"), "{stdout}");
}

/// The scenario; a no-op unless run by the test above.
#[test]
fn canary_scenario_child() {
    if std::env::var_os("RF_TRANSPORT_CANARY_CHILD").is_none() {
        return;
    }
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so the subscriber sees reqwest's and hyper's background tasks too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut shown: Vec<(String, String)> = Vec::new();

    rt.block_on(async {
        let server = MockServer::start().await;
        // Answers with a signed URL in a body of the wrong shape, after a 503.
        Mock::given(path(format!("/_signed/{TOKEN}")))
            .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(path(format!("/_signed/{TOKEN}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("location", format!("https://b.example/o?sig={SIG}").as_str())
                    .set_body_string(format!(
                        r#"{{"uploadURL": "https://b.example/o?X-Amz-Signature={SIG}&api_key={CANARY}", "n": "x"}}"#
                    )),
            )
            .mount(&server)
            .await;
        Mock::given(path("/slow"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;

        let retrying = Retrying::new(http(), RetryPolicy::default());
        let req = secret_request(&server.uri());
        shown.push(("request debug".into(), format!("{req:?}")));
        shown.push(("request display".into(), req.to_string()));
        shown.push(("redacted url".into(), req.redacted_url()));

        // A decode error quoting the body.
        let answer = retrying.send(req).await.unwrap();
        assert_eq!(answer.attempts(), 2);
        shown.push(("response debug".into(), format!("{answer:?}")));
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Wrong {
            n: u32,
        }
        let err = answer.json::<Wrong>().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        shown.push(("decode error".into(), format!("{err} / {err:?}")));

        // A connect error.
        let closed = support::closed_port().await;
        let err = http()
            .send(secret_request(&format!("http://{closed}")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect);
        shown.push(("connect error".into(), error_chain(&err)));

        // A timeout.
        let err = http()
            .send(
                Request::get(url(&format!("{}/slow", server.uri())))
                    .query("api_key", CANARY)
                    .timeout(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        shown.push(("timeout error".into(), error_chain(&err)));

        // A broken connection.
        let addr = support::hang_up().await;
        let err = http()
            .send(secret_request(&format!("http://{addr}")))
            .await
            .unwrap_err();
        shown.push(("interrupted error".into(), error_chain(&err)));

        // Retries that give up, over the mock, with an unexpected request.
        let mock = MockTransport::new();
        mock.on(Method::GET, format!("/_signed/{TOKEN}"))
            .fail(ErrorKind::Connect);
        let r = Retrying::new(mock.clone(), RetryPolicy::default())
            .with_sleeper(RecordingSleeper::new());
        let err = r.send(secret_request("http://api.test")).await.unwrap_err();
        assert_eq!(err.attempts(), 5);
        shown.push(("retry error".into(), error_chain(&err)));
        let err = mock
            .send(Request::post(url("http://api.test/other")).query("api_key", CANARY))
            .await
            .unwrap_err();
        shown.push(("unexpected request".into(), error_chain(&err)));
        shown.push(("mock unexpected list".into(), mock.unexpected().join("\n")));
        shown.push(("recorded requests".into(), format!("{:?}", mock.requests())));
        shown.push(("mock debug".into(), format!("{mock:?} {r:?}")));

        // A bad header value echoing a secret.
        let err = Request::get(url("http://h/"))
            .try_header("x-key", &format!("api_key={CANARY}\n"))
            .unwrap_err();
        shown.push(("header error".into(), error_chain(&err)));

        // Bodies and responses built by hand.
        shown.push((
            "body debug".into(),
            format!("{:?}", Body::from_bytes(format!("api_key={CANARY}"))),
        ));
        let mut headers = rf_transport::HeaderMap::new();
        headers.insert("set-cookie", HeaderValue::try_from(format!("s={BEARER}")).unwrap());
        let resp = Response::from_bytes(rf_transport::StatusCode::OK, headers, "")
            .with_request(&Method::GET, &url(&format!("http://h/?sig={SIG}")));
        shown.push(("hand-made response".into(), format!("{resp:?}")));
    });
    drop(rt);

    let log_text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The test must be able to fail: the logs did mention the requests.
    assert!(log_text.contains("retrying request"), "{log_text}");
    assert!(log_text.contains("api_key=REDACTED"), "{log_text}");
    assert!(log_text.contains("/_signed/REDACTED"), "{log_text}");
    assert_clean("tracing output", &log_text);
    for (what, text) in &shown {
        assert!(!text.is_empty(), "{what} is empty");
        assert_clean(what, text);
    }
    // And they did name the requests.
    let all: String = shown
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("api_key=REDACTED"));
    assert!(all.contains("X-Goog-Signature=REDACTED"));
    let mut stdout = std::io::stdout();
    writeln!(stdout, "canary scenario checked").unwrap();
}

/// `Display` of an error and all its sources, and its `Debug`.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{err:?}\n{err}");
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(&format!("\ncaused by: {s} / {s:?}"));
        source = s.source();
    }
    out
}
