//! The reqwest transport against wiremock and raw servers: exactly what goes
//! over the wire (method, path, query, headers, JSON, multipart), statuses
//! as responses, and each error kind.

use std::time::Duration;

use rf_transport::{
    Body, ErrorKind, HeaderName, HeaderValue, Request, RetryPolicy, Retrying, Transport, USER_AGENT,
};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{self, CANARY, http, url};

#[tokio::test]
async fn get_sends_exact_method_path_query_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/my-ws/batches"))
        .and(query_param("api_key", CANARY))
        .and(query_param("pageSize", "10"))
        .and(header("user-agent", USER_AGENT))
        .and(header("x-extra", "yes"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"n":1}"#, "application/json"))
        .expect(1)
        .mount(&server)
        .await;

    let req = Request::get(url(&format!("{}/my-ws/batches", server.uri())))
        .query("api_key", CANARY)
        .query("pageSize", "10")
        .header(
            HeaderName::from_static("x-extra"),
            HeaderValue::from_static("yes"),
        );
    let answer = http().send(req).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.attempts(), 1);
    #[derive(serde::Deserialize)]
    struct N {
        n: u32,
    }
    assert_eq!(answer.json::<N>().await.unwrap().n, 1);

    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.url.query(),
        Some(format!("api_key={CANARY}&pageSize=10").as_str())
    );
    assert_eq!(r.headers.get("user-agent").unwrap(), USER_AGENT);
    assert!(r.headers.get("content-length").is_none());
    assert!(r.headers.get("content-type").is_none());
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn post_json_sets_content_type_and_length() {
    let server = MockServer::start().await;
    let doc = serde_json::json!({"batchId": "b-1", "refs": [{"name": "a.jpg"}]});
    Mock::given(method("POST"))
        .and(path("/ingest"))
        .and(header("content-type", "application/json"))
        .and(body_json(&doc))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let req = Request::post(url(&format!("{}/ingest", server.uri())))
        .json(&doc)
        .unwrap();
    let answer = http().send(req).await.unwrap();
    assert_eq!(answer.status(), 201);
    let got = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        got.headers.get("content-length").unwrap(),
        &got.body.len().to_string()
    );
}

#[tokio::test]
async fn empty_post_sends_content_length_zero() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jobs/j1/restart"))
        .and(header("content-length", "0"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let answer = http()
        .send(Request::post(url(&format!(
            "{}/jobs/j1/restart",
            server.uri()
        ))))
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert!(answer.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn multipart_file_part_is_exact_and_streamed_with_length() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cam1_0001.jpg");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(&file, &content).unwrap();

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/data-staging/v1/external/ws/batches/b1/upload/image"))
        .and(query_param("fileName", "cam1_0001.jpg"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;

    let body = Body::multipart(
        "cam1_0001.jpg",
        "cam1_0001.jpg",
        None,
        Body::file(&file).await.unwrap(),
    );
    let Body::Multipart(part) = &body else {
        panic!("multipart expected")
    };
    let boundary = part.boundary().to_string();
    let req = Request::post(url(&format!(
        "{}/data-staging/v1/external/ws/batches/b1/upload/image",
        server.uri()
    )))
    .query("api_key", CANARY)
    .query("fileName", "cam1_0001.jpg")
    .body(body);
    assert_eq!(http().send(req).await.unwrap().status(), 200);

    let got = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        got.headers.get("content-type").unwrap(),
        &format!("multipart/form-data; boundary={boundary}")
    );
    assert!(got.headers.get("transfer-encoding").is_none());
    let mut expected = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"cam1_0001.jpg\"; \
         filename=\"cam1_0001.jpg\"\r\n\r\n"
    )
    .into_bytes();
    expected.extend_from_slice(&content);
    expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert_eq!(got.body.len(), expected.len());
    assert!(got.body == expected, "multipart body differs");
    assert_eq!(
        got.headers.get("content-length").unwrap(),
        &expected.len().to_string()
    );
}

#[tokio::test]
async fn signed_put_sends_only_the_given_headers_and_raw_body() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/_signed/tok"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let req = Request::put(url(&format!("{}/_signed/tok?sig=abc", server.uri())))
        .try_header("X-Goog-Content-Length-Range", "0,1000")
        .unwrap()
        .body(Body::from_bytes("TARDATA"));
    assert_eq!(http().send(req).await.unwrap().status(), 200);
    let got = &server.received_requests().await.unwrap()[0];
    assert_eq!(got.body, b"TARDATA");
    assert_eq!(
        got.headers.get("x-goog-content-length-range").unwrap(),
        "0,1000"
    );
    assert_eq!(got.url.query(), Some("sig=abc"));
    assert!(got.headers.get("content-type").is_none());
    assert_eq!(got.headers.get("content-length").unwrap(), "7");
}

#[tokio::test]
async fn error_statuses_are_responses_not_errors() {
    let server = MockServer::start().await;
    for (code, p) in [(404, "/missing"), (401, "/auth"), (500, "/boom")] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(code).set_body_string(r#"{"error":"nope"}"#))
            .mount(&server)
            .await;
    }
    for (code, p) in [(404, "/missing"), (401, "/auth"), (500, "/boom")] {
        let answer = http()
            .send(Request::get(url(&format!("{}{p}", server.uri()))))
            .await
            .unwrap();
        assert_eq!(answer.status(), code);
        assert_eq!(answer.text().await.unwrap(), r#"{"error":"nope"}"#);
    }
}

#[tokio::test]
async fn refused_connection_is_a_connect_error_naming_the_request() {
    let addr = support::closed_port().await;
    let err = http()
        .send(Request::post(url(&format!(
            "http://{addr}/x?api_key={CANARY}"
        ))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.is_retryable(false));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "cannot connect: POST http://{addr}/x?api_key=REDACTED: "
        )),
        "{shown}"
    );
    assert!(shown.contains("check the network"), "{shown}");
    assert!(!shown.contains(CANARY));
}

#[tokio::test]
async fn slow_server_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = http()
        .send(
            Request::get(url(&format!("{}/slow", server.uri())))
                .timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // The builder's default request timeout applies when the request sets none.
    let short = rf_transport::ReqwestTransport::builder()
        .no_proxy()
        .request_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let err = short
        .send(Request::get(url(&format!("{}/slow", server.uri()))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn truncated_answer_is_interrupted() {
    let addr = support::truncated_answer(1000, 10).await;
    let mut answer = http()
        .send(Request::get(url(&format!("http://{addr}/file"))))
        .await
        .unwrap();
    let mut got = 0;
    let err = loop {
        match answer.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("a truncated body must not end cleanly"),
            Err(e) => break e,
        }
    };
    assert!(got <= 10);
    assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
    assert!(
        err.to_string().contains(&format!("GET http://{addr}/file")),
        "{err}"
    );
}

#[tokio::test]
async fn server_hanging_up_is_interrupted() {
    let addr = support::hang_up().await;
    let err = http()
        .send(Request::get(url(&format!("http://{addr}/x"))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
    assert!(err.is_retryable(true) && !err.is_retryable(false));
}

#[tokio::test]
async fn failing_body_is_a_body_error() {
    let server = MockServer::start().await;
    Mock::given(path("/up"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let body = Body::from_stream_factory(Some(10), || {
        futures::StreamExt::boxed(futures::stream::iter([
            Ok(bytes::Bytes::from_static(b"abc")),
            Err(std::io::Error::other("the disk went away")),
        ]))
    });
    let err = http()
        .send(Request::put(url(&format!("{}/up", server.uri()))).body(body))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err}");
    assert!(err.to_string().contains("the disk went away"), "{err}");
    assert!(!err.is_retryable(true));

    // A file removed after the body was made.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.jpg");
    std::fs::write(&path, b"x").unwrap();
    let body = Body::file(&path).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = http()
        .send(Request::put(url(&format!("{}/up", server.uri()))).body(body))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err}");
    assert!(err.to_string().contains("cannot open"), "{err}");
    assert!(err.to_string().contains("gone.jpg"), "{err}");
}

#[tokio::test]
async fn retrying_over_http_resends_the_same_streamed_body() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/shard"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/shard"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shard.tar");
    std::fs::write(&file, vec![42u8; 300_000]).unwrap();
    let retrying = Retrying::new(http(), RetryPolicy::default());
    let answer = retrying
        .send(
            Request::put(url(&format!("{}/shard", server.uri())))
                .body(Body::file(&file).await.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.attempts(), 2);
    assert_eq!(retrying.stats().retries(), 1);
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body.len(), 300_000);
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test]
async fn https_speaks_tls_and_a_failed_handshake_is_a_connect_error() {
    // A server that answers a TLS ClientHello with plain HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 5];
        sock.read_exact(&mut first).await.unwrap();
        sock.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        first
    });
    let err = http()
        .send(Request::get(url(&format!(
            "https://{addr}/?api_key={CANARY}"
        ))))
        .await
        .unwrap_err();
    let first = server.await.unwrap();
    // 0x16 = TLS handshake record, 0x03 = TLS major version.
    assert_eq!(
        &first[..2],
        &[0x16, 0x03],
        "the client did not start a TLS handshake"
    );
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(!err.to_string().contains(CANARY));
}

#[tokio::test]
async fn upload_cut_off_by_the_server_is_interrupted() {
    let addr = support::cut_off_upload(100_000).await;
    const CHUNK: usize = 64 * 1024;
    let body = Body::from_stream_factory(Some(512 * CHUNK as u64), || {
        let chunk = bytes::Bytes::from(vec![3u8; CHUNK]);
        futures::StreamExt::boxed(futures::stream::iter(
            (0..512).map(move |_| Ok(chunk.clone())),
        ))
    });
    let err = http()
        .send(Request::put(url(&format!("http://{addr}/shard"))).body(body))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
    // A shard PUT is not idempotent: this must not be retried blindly.
    assert!(!err.is_retryable(false));
}
