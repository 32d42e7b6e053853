//! The mock records what the wire carries: the same requests sent through
//! `MockTransport` and through `ReqwestTransport` to wiremock arrive with
//! the same method, path, query, body bytes and headers — so assertions on
//! `RecordedRequest`s in other crates' tests hold for real HTTP too.

use rf_transport::{Body, Method, MockTransport, Request, Transport};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{CANARY, http, url};

async fn requests(base: &str, file: &std::path::Path) -> Vec<Request> {
    let u = |p: &str| url(&format!("{base}{p}"));
    vec![
        Request::get(u("/ws/batches"))
            .query("api_key", CANARY)
            .query("pageSize", "100")
            .query("displayName", "My Batch & more"),
        Request::post(u("/ws/batches/b1/references"))
            .query("api_key", CANARY)
            .json(&serde_json::json!({"images": [{"name": "a.jpg", "url": "https://x/a.jpg"}]}))
            .unwrap(),
        Request::post(u("/ws/batches/b1/upload/image"))
            .query("api_key", CANARY)
            .query("fileName", "a b.jpg")
            .body(Body::multipart(
                "a b.jpg",
                "a b.jpg",
                None,
                Body::file(file).await.unwrap(),
            )),
        Request::post(u("/ws/jobs/j1/restart")).query("api_key", CANARY),
        Request::put(u("/_signed/tok?sig=s1&x=%2Fy"))
            .try_header("X-Goog-Content-Length-Range", "0,5000")
            .unwrap()
            .body(Body::file(file).await.unwrap()),
    ]
}

#[tokio::test]
async fn mock_and_wire_see_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a b.jpg");
    std::fs::write(
        &file,
        (0..4000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>(),
    )
    .unwrap();

    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mock = MockTransport::with_handler(|_| {
        rf_transport::Response::from_bytes(
            rf_transport::StatusCode::OK,
            rf_transport::HeaderMap::new(),
            "",
        )
    });
    let reqwest = http();
    for req in requests(&server.uri(), &file).await {
        mock.send(req.clone()).await.unwrap();
        reqwest.send(req).await.unwrap();
    }

    let recorded = mock.requests();
    let wire = server.received_requests().await.unwrap();
    assert_eq!(recorded.len(), wire.len());
    for (rec, got) in recorded.iter().zip(&wire) {
        let what = format!("{} {}", rec.method, rec.path);
        assert_eq!(rec.method.as_str(), got.method.as_str(), "{what}");
        assert_eq!(rec.url.path(), got.url.path(), "{what}");
        assert_eq!(rec.url.query(), got.url.query(), "{what}");
        let wire_query: Vec<(String, String)> = got.url.query_pairs().into_owned().collect();
        assert_eq!(rec.query, wire_query, "{what}");
        assert!(rec.body == got.body, "{what}: bodies differ");
        for (name, value) in &rec.headers {
            assert_eq!(
                got.headers.get(name.as_str()),
                Some(value),
                "{what}: header {name}"
            );
        }
        if rec.method == Method::POST || rec.method == Method::PUT {
            assert_eq!(
                got.headers
                    .get("content-length")
                    .map(|v| v.to_str().unwrap().to_string()),
                Some(rec.body.len().to_string()),
                "{what}"
            );
        }
    }
    // The multipart part is also available parsed.
    let part = recorded[2].multipart.as_ref().unwrap();
    assert_eq!(part.file_name, "a b.jpg");
    assert_eq!(part.bytes.len(), 4000);
}
