//! A transport written outside the crate with only its public API: an
//! in-memory object store that streams bodies in and out, used directly,
//! behind `Arc<dyn Transport>`/`Box<dyn Transport>` and under `Retrying`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use rf_transport::{
    Body, DynTransport, ErrorKind, HeaderMap, Method, RecordingSleeper, Request, Response,
    RetryPolicy, Retrying, StatusCode, Transport, TransportError, async_trait,
};

use super::support::url;

/// `PUT /objects/{name}` stores the body, `GET /objects/{name}` returns it;
/// the first `flaky` calls fail as if the network were down.
#[derive(Debug, Default)]
struct ObjectStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    flaky: AtomicU32,
}

#[async_trait]
impl Transport for ObjectStore {
    async fn send(&self, request: Request) -> Result<Response, TransportError> {
        if self
            .flaky
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(request.error(ErrorKind::Connect, "network down"));
        }
        let Some(name) = request.url.path().strip_prefix("/objects/") else {
            return Ok(Response::from_bytes(
                StatusCode::NOT_FOUND,
                HeaderMap::new(),
                "no route",
            ));
        };
        let name = name.to_string();
        match request.method {
            Method::PUT => {
                let mut data = Vec::new();
                let mut body = request.body.stream();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| request.error(ErrorKind::Body, e.to_string()))?;
                    data.extend_from_slice(&chunk);
                }
                self.objects.lock().unwrap().insert(name, data);
                Ok(Response::from_bytes(
                    StatusCode::CREATED,
                    HeaderMap::new(),
                    "",
                ))
            }
            Method::GET => match self.objects.lock().unwrap().get(&name) {
                Some(data) => {
                    let chunks: Vec<Result<bytes::Bytes, TransportError>> = data
                        .chunks(4)
                        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                        .collect();
                    Ok(Response::from_stream(
                        StatusCode::OK,
                        HeaderMap::new(),
                        futures::stream::iter(chunks),
                    )
                    .with_request(&request.method, &request.url))
                }
                None => Ok(Response::from_bytes(
                    StatusCode::NOT_FOUND,
                    HeaderMap::new(),
                    "",
                )),
            },
            _ => Ok(Response::from_bytes(
                StatusCode::METHOD_NOT_ALLOWED,
                HeaderMap::new(),
                "",
            )),
        }
    }
}

#[tokio::test]
async fn custom_transport_works_directly_and_type_erased() {
    let store: DynTransport = Arc::new(ObjectStore::default());
    let put = Request::put(url("mem://store/objects/a.txt"))
        .body(Body::from_stream_factory(None, || {
            futures::stream::iter(["hello ", "world"].map(|s| Ok(bytes::Bytes::from(s)))).boxed()
        }));
    assert_eq!(store.send(put).await.unwrap().status(), 201);

    let boxed: Box<dyn Transport> = Box::new(store.clone());
    let mut answer = boxed
        .send(Request::get(url("mem://store/objects/a.txt")))
        .await
        .unwrap();
    let mut chunks = Vec::new();
    while let Some(c) = answer.chunk().await.unwrap() {
        chunks.push(c);
    }
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks.concat(), b"hello world");
    let missing = store
        .send(Request::get(url("mem://store/objects/nope")))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn custom_transport_under_retrying() {
    let store = ObjectStore {
        flaky: AtomicU32::new(2),
        ..ObjectStore::default()
    };
    let retrying =
        Retrying::new(store, RetryPolicy::default()).with_sleeper(RecordingSleeper::new());
    let answer = retrying
        .send(Request::put(url("mem://store/objects/b")).body(Body::from_bytes("B")))
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.attempts(), 3);
    let got = retrying
        .send(Request::get(url("mem://store/objects/b")))
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "B");
    assert_eq!(retrying.inner().objects.lock().unwrap().len(), 1);
}
