//! What an export asks before listing ([`ExportPlan::ask`]): the batch,
//! its parts and its count in flight at once (one round trip, not three),
//! a simple batch never waiting for the parts answer it does not need, and
//! parts the batch lacks refused before anything is listed.
//!
//! The transport here holds chosen requests: behind a barrier that opens
//! only when all of them have arrived (a client asking in turn never
//! fills it), or forever. Each test runs under a deadline, so a client
//! that waits where it should not fails instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use rf_batch::export::ExportPlan;
use rf_batch::{Client, Error};
use rf_transport::{Method, MockTransport, Request, Response, Transport, TransportError};
use serde_json::json;

const DS: &str = "/data-staging/v1/external/ws";
const DEADLINE: Duration = Duration::from_secs(20);

/// How [`Holding`] treats the requests to one path.
#[derive(Debug)]
enum Hold {
    /// Until every request behind the barrier has arrived.
    Barrier(Arc<tokio::sync::Barrier>),
    /// Never answered.
    Forever,
}

/// A `MockTransport` whose requests to some paths are held first.
#[derive(Debug)]
struct Holding {
    mock: MockTransport,
    holds: Vec<(String, Hold)>,
}

#[rf_transport::async_trait]
impl Transport for Holding {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        let hold = self.holds.iter().find(|(p, _)| p == request.url.path());
        match hold.map(|(_, h)| h) {
            Some(Hold::Barrier(barrier)) => {
                barrier.wait().await;
            }
            Some(Hold::Forever) => std::future::pending::<()>().await,
            None => {}
        }
        self.mock.send(request).await
    }
}

/// A mock of batch `out` of `batch_type`, with parts `parts` (answered for
/// a multipart batch, refused otherwise) and 7 files in all.
fn batch_mock(batch_type: &str, parts: &[&str]) -> MockTransport {
    let m = MockTransport::new();
    m.on(Method::GET, "/")
        .query("api_key", "k")
        .respond_json(200, &json!({"workspace": "ws"}));
    m.on(Method::GET, format!("{DS}/batches/out")).respond_json(
        200,
        &json!({"batch": {"displayName": "out", "batchId": "out", "batchType": batch_type,
            "batchContentType": "images", "createdDate": "2025-06-01T02:00:11Z",
            "expiryDate": "2025-06-08T02:00:11Z"}}),
    );
    let parts_answer = if batch_type == "multipart-batch" {
        let parts: Vec<_> = parts
            .iter()
            .map(|p| json!({"partName": p, "partType": "sharded-batch", "contentType": "archives"}))
            .collect();
        (200, json!({"batchParts": parts}))
    } else {
        (400, json!({"error": "only multipart batches have parts"}))
    };
    m.on(Method::GET, format!("{DS}/batches/out/parts"))
        .respond_json(parts_answer.0, &parts_answer.1);
    for part in parts {
        m.on(Method::GET, format!("{DS}/batches/out/count"))
            .query("partName", *part)
            .respond_json(200, &json!({"count": 2}));
        let entry = json!({"downloadURL": format!("http://files.test/{part}.tar"),
            "fileName": format!("{part}.tar"), "contentType": "archives"});
        m.on(Method::GET, format!("{DS}/batches/out/list"))
            .query("partName", *part)
            .respond_json(
                200,
                &json!({"filesMetadata": [entry], "nextPageToken": null}),
            );
    }
    m.on(Method::GET, format!("{DS}/batches/out/count"))
        .respond_json(200, &json!({"count": 7}));
    let whole = json!({"downloadURL": "http://files.test/all.tar", "fileName": "all.tar",
        "contentType": "archives"});
    m.on(Method::GET, format!("{DS}/batches/out/list"))
        .respond_json(
            200,
            &json!({"filesMetadata": [whole], "nextPageToken": null}),
        );
    m
}

fn client(mock: &MockTransport, holds: Vec<(&str, Hold)>) -> Client {
    let holds = holds
        .into_iter()
        .map(|(p, h)| (format!("{DS}/batches/out{p}"), h))
        .collect();
    let transport = Holding {
        mock: mock.clone(),
        holds,
    };
    Client::new(transport, "http://api.test", "k").unwrap()
}

async fn ask(client: &Client, wanted: &[&str]) -> Result<ExportPlan, Error> {
    let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
    tokio::time::timeout(DEADLINE, ExportPlan::ask(client, "out", &wanted))
        .await
        .expect("the plan waited for a request it should have sent beside the others")
}

#[tokio::test]
async fn the_batch_its_parts_and_its_count_are_asked_at_once() {
    let m = batch_mock("multipart-batch", &["results", "logs"]);
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let client = client(
        &m,
        vec![
            ("", Hold::Barrier(barrier.clone())),
            ("/parts", Hold::Barrier(barrier.clone())),
            ("/count", Hold::Barrier(barrier)),
        ],
    );
    let plan = ask(&client, &[]).await.unwrap();
    assert_eq!(
        plan.parts(),
        Some(&["results".to_owned(), "logs".to_owned()][..])
    );
    assert_eq!(plan.total(), 7);
    let files: Vec<_> = plan.files(&client).try_collect().await.unwrap();
    let listed: Vec<_> = files
        .iter()
        .map(|f| (f.part.as_deref(), f.file.file_name.as_str()))
        .collect();
    assert_eq!(
        listed,
        [(Some("results"), "results.tar"), (Some("logs"), "logs.tar")]
    );
}

#[tokio::test]
async fn a_simple_batch_never_waits_for_the_parts_it_does_not_need() {
    let m = batch_mock("simple-batch", &[]);
    let client = client(&m, vec![("/parts", Hold::Forever)]);
    let plan = ask(&client, &[]).await.unwrap();
    assert_eq!((plan.parts(), plan.total()), (None, 7));
    let files: Vec<_> = plan.files(&client).try_collect().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].file.file_name, "all.tar");
}

#[tokio::test]
async fn a_refused_parts_answer_of_a_simple_batch_is_not_an_error() {
    let m = batch_mock("simple-batch", &[]);
    let client = client(&m, Vec::new());
    let plan = ask(&client, &[]).await.unwrap();
    assert_eq!(plan.parts(), None);
}

#[tokio::test]
async fn wanted_parts_are_listed_and_counted_alone() {
    let m = batch_mock("multipart-batch", &["results", "logs", "extra"]);
    let client = client(&m, Vec::new());
    let plan = ask(&client, &["extra", "results"]).await.unwrap();
    // In the batch's order; the count is theirs only (2 each).
    assert_eq!(
        plan.parts(),
        Some(&["results".to_owned(), "extra".to_owned()][..])
    );
    assert_eq!(plan.total(), 4);
}

#[tokio::test]
async fn a_part_the_batch_lacks_is_refused_before_anything_is_listed() {
    for (batch_type, parts) in [("multipart-batch", &["results"][..]), ("simple-batch", &[])] {
        let m = batch_mock(batch_type, parts);
        let client = client(&m, Vec::new());
        match ask(&client, &["nope"]).await {
            Err(Error::UnknownPart { batch, part }) => {
                assert_eq!((batch.as_str(), part.as_str()), ("out", "nope"));
            }
            other => panic!("{batch_type}: expected UnknownPart, got {other:?}"),
        }
        let listed = m.requests_to(&Method::GET, &format!("{DS}/batches/out/list"));
        assert!(listed.is_empty(), "{batch_type}: nothing is listed");
    }
}
