//! Decoding rf-types models from real answers: a wire sample of a batch
//! listing decodes; a wrong field is named by its path, with a snippet.

use rf_transport::{ErrorKind, Request, Transport};
use rf_types::ListBatchesResponse;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{http, url};

/// A copy of rf-types' `tests/fixtures/list_batches.json`.
const FIXTURE: &str = r#"{
  "batches": [
    {
      "displayName": "Nightly camera dump",
      "batchId": "nightly-cam-0601",
      "batchType": "sharded-batch",
      "batchContentType": "images",
      "createdDate": "2025-06-01T02:00:11.512Z",
      "expiryDate": "2025-06-08T02:00:11.512Z"
    },
    {
      "displayName": "job-k3v9x0a1b2c3 export",
      "batchId": "job-k3v9x0a1b2c3-export-output",
      "batchType": "multipart-batch",
      "batchContentType": "mixed",
      "createdDate": "2025-06-01T03:20:00Z",
      "expiryDate": "2025-06-08T03:20:00Z"
    }
  ],
  "nextPageToken": "page-2"
}"#;

async fn serve(body: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/ws/batches"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn listing_fixture_decodes() {
    let server = serve(FIXTURE.to_string()).await;
    let answer = http()
        .send(Request::get(url(&format!("{}/ws/batches", server.uri()))))
        .await
        .unwrap();
    let list: ListBatchesResponse = answer.json().await.unwrap();
    assert_eq!(list.batches.len(), 2);
    assert_eq!(list.batches[1].batch_id, "job-k3v9x0a1b2c3-export-output");
    assert_eq!(list.next_page_token.as_deref(), Some("page-2"));
}

#[tokio::test]
async fn wrong_field_is_named_by_path() {
    let broken = FIXTURE.replacen("\"multipart-batch\"", "42", 1);
    assert_ne!(broken, FIXTURE);
    let server = serve(broken).await;
    let answer = http()
        .send(Request::get(url(&format!(
            "{}/ws/batches?api_key=k3y",
            server.uri()
        ))))
        .await
        .unwrap();
    let err = answer.json::<ListBatchesResponse>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    let msg = err.to_string();
    assert!(msg.contains("at `batches[1].batchType`"), "{msg}");
    assert!(msg.contains("the answer starts with \"{"), "{msg}");
    assert!(msg.contains("/ws/batches?api_key=REDACTED"), "{msg}");
}
