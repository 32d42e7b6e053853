//! `Retrying` over a scripted `MockTransport` with a virtual clock: which
//! answers are retried, how long it waits, when it gives up.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rf_transport::{
    Body, ErrorKind, Method, MockTransport, RecordingSleeper, Request, RetryPolicy, Retrying,
    Sleeper, Transport,
};

use super::support::url;

fn retrying(
    mock: &MockTransport,
    policy: RetryPolicy,
) -> (Retrying<MockTransport>, RecordingSleeper) {
    let sleeper = RecordingSleeper::new();
    let r = Retrying::new(mock.clone(), policy)
        .with_sleeper(sleeper.clone())
        .with_rng_seed(42);
    (r, sleeper)
}

fn get() -> Request {
    Request::get(url("http://api.test/x"))
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x")
        .times(1)
        .response_header("retry-after", "7")
        .respond(429, "slow down");
    mock.on(Method::GET, "/x").respond(200, "ok");
    let (r, sleeper) = retrying(&mock, RetryPolicy::default());
    let answer = r.send(get()).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.attempts(), 2);
    assert_eq!(sleeper.sleeps(), vec![Duration::from_secs(7)]);
    assert_eq!(r.stats().retries(), 1);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let mock = MockTransport::new();
    let sleeper = RecordingSleeper::new();
    let when = httpdate::fmt_http_date(sleeper.wall_clock() + Duration::from_secs(30));
    mock.on(Method::GET, "/x")
        .times(1)
        .response_header("retry-after", &when)
        .respond(503, "");
    mock.on(Method::GET, "/x").respond(200, "");
    let r = Retrying::new(mock.clone(), RetryPolicy::default()).with_sleeper(sleeper.clone());
    assert_eq!(r.send(get()).await.unwrap().status(), 200);
    let waited = sleeper.sleeps()[0];
    // HTTP dates have whole seconds.
    assert!(
        waited > Duration::from_secs(28) && waited <= Duration::from_secs(30),
        "{waited:?}"
    );
}

#[tokio::test]
async fn retry_after_is_capped() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x")
        .times(1)
        .response_header("retry-after", "3600")
        .respond(503, "");
    mock.on(Method::GET, "/x").respond(200, "");
    let (r, sleeper) = retrying(&mock, RetryPolicy::default());
    assert_eq!(r.send(get()).await.unwrap().status(), 200);
    assert_eq!(sleeper.sleeps(), vec![Duration::from_secs(60)]);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_last_response() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x").respond(503, "down");
    let (r, sleeper) = retrying(&mock, RetryPolicy::default());
    let answer = r.send(get()).await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.attempts(), 5);
    assert_eq!(answer.text().await.unwrap(), "down");
    assert_eq!(mock.requests().len(), 5);
    let sleeps = sleeper.sleeps();
    assert_eq!(sleeps.len(), 4);
    let policy = RetryPolicy::default();
    for (i, s) in sleeps.iter().enumerate() {
        assert!(
            *s <= policy.backoff_ceiling(i as u32 + 1),
            "retry {i}: {s:?}"
        );
    }
    assert_eq!(r.stats().retries(), 4);
    assert_eq!(r.stats().gave_up(), 1);
}

#[tokio::test]
async fn gives_up_when_the_time_budget_would_be_exceeded() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x")
        .response_header("retry-after", "4")
        .respond(503, "");
    let policy = RetryPolicy {
        max_attempts: 100,
        max_elapsed: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    let (r, sleeper) = retrying(&mock, policy);
    let answer = r.send(get()).await.unwrap();
    // 0 s +4 -> 4 s +4 -> 8 s; a third wait would end at 12 s > 10 s.
    assert_eq!(answer.attempts(), 3);
    assert_eq!(sleeper.total(), Duration::from_secs(8));
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [400u16, 401, 403, 404, 409, 413, 422] {
        let mock = MockTransport::new();
        mock.on(Method::POST, "/x")
            .response_header("retry-after", "1")
            .respond(status, "");
        let (r, sleeper) = retrying(&mock, RetryPolicy::default());
        let answer = r
            .send(Request::post(url("http://api.test/x")).idempotent(true))
            .await
            .unwrap();
        assert_eq!(answer.status(), status);
        assert_eq!(answer.attempts(), 1, "{status}");
        assert!(sleeper.sleeps().is_empty(), "{status}");
        assert_eq!(mock.requests().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    for status in [408u16, 429, 500, 502, 503, 504] {
        let mock = MockTransport::new();
        mock.on(Method::POST, "/x").times(1).respond(status, "");
        mock.on(Method::POST, "/x").respond(201, "");
        let (r, _) = retrying(&mock, RetryPolicy::default());
        let answer = r
            .send(Request::post(url("http://api.test/x")))
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{status}");
        assert_eq!(answer.attempts(), 2, "{status}");
    }
}

#[tokio::test]
async fn timeouts_and_interruptions_are_retried_only_when_idempotent() {
    for kind in [ErrorKind::Timeout, ErrorKind::Interrupted] {
        // Idempotent: retried until it works.
        let mock = MockTransport::new();
        mock.on(Method::PUT, "/x").times(2).fail(kind);
        mock.on(Method::PUT, "/x").respond(200, "");
        let (r, sleeper) = retrying(&mock, RetryPolicy::default());
        let answer = r
            .send(Request::put(url("http://api.test/x")))
            .await
            .unwrap();
        assert_eq!(answer.attempts(), 3, "{kind:?}");
        assert_eq!(sleeper.sleeps().len(), 2);

        // Not idempotent: the first failure is final.
        let mock = MockTransport::new();
        mock.on(Method::POST, "/x").times(1).fail(kind);
        mock.on(Method::POST, "/x").respond(200, "");
        let (r, sleeper) = retrying(&mock, RetryPolicy::default());
        let err = r
            .send(Request::post(url("http://api.test/x")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(err.attempts(), 1);
        assert!(sleeper.sleeps().is_empty());
        assert_eq!(mock.requests().len(), 1);
    }
}

#[tokio::test]
async fn connect_errors_are_retried_even_when_not_idempotent() {
    let mock = MockTransport::new();
    mock.on(Method::POST, "/x")
        .times(1)
        .fail(ErrorKind::Connect);
    mock.on(Method::POST, "/x").respond(200, "");
    let (r, _) = retrying(&mock, RetryPolicy::default());
    let answer = r
        .send(Request::post(url("http://api.test/x")))
        .await
        .unwrap();
    assert_eq!(answer.attempts(), 2);
}

#[tokio::test]
async fn errors_that_exhaust_retries_say_how_many_attempts() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x").fail(ErrorKind::Connect);
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let (r, sleeper) = retrying(&mock, policy);
    let err = r.send(get()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.elapsed(), Some(sleeper.total()));
    assert!(
        err.to_string().contains(&format!(
            "(gave up after 3 attempts in {:.1}s)",
            sleeper.total().as_secs_f64()
        )),
        "{err}"
    );
    assert!(err.to_string().contains("GET http://api.test/x"), "{err}");
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    for kind in [
        ErrorKind::Decode,
        ErrorKind::Body,
        ErrorKind::Request,
        ErrorKind::Other,
    ] {
        let mock = MockTransport::new();
        mock.on(Method::GET, "/x").fail(kind);
        let (r, _) = retrying(&mock, RetryPolicy::default());
        let err = r.send(get()).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(mock.requests().len(), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn jitter_is_full_bounded_and_seeded() {
    async fn sleeps(seed: u64) -> Vec<Duration> {
        let mock = MockTransport::new();
        mock.on(Method::GET, "/x").respond(500, "");
        let sleeper = RecordingSleeper::new();
        let policy = RetryPolicy {
            max_attempts: 9,
            max_elapsed: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let r = Retrying::new(mock, policy.clone())
            .with_sleeper(sleeper.clone())
            .with_rng_seed(seed);
        r.send(get()).await.unwrap();
        let s = sleeper.sleeps();
        for (i, d) in s.iter().enumerate() {
            assert!(*d <= policy.backoff_ceiling(i as u32 + 1));
        }
        s
    }
    let a = sleeps(1).await;
    assert_eq!(a.len(), 8);
    assert_eq!(a, sleeps(1).await);
    assert_ne!(a, sleeps(2).await);
    // Full jitter: not simply the ceilings.
    let ceilings: Vec<_> = (1..=8)
        .map(|n| RetryPolicy::default().backoff_ceiling(n))
        .collect();
    assert_ne!(a, ceilings);
}

#[tokio::test]
async fn streamed_bodies_are_recreated_for_each_attempt() {
    let mock = MockTransport::new();
    mock.on(Method::PUT, "/x").times(2).respond(502, "");
    mock.on(Method::PUT, "/x").respond(200, "");
    let body = Body::from_stream_factory(Some(6), || {
        futures::stream::iter([Ok(Bytes::from("abc")), Ok(Bytes::from("def"))]).boxed()
    });
    let (r, _) = retrying(&mock, RetryPolicy::default());
    let answer = r
        .send(Request::put(url("http://api.test/x")).body(body))
        .await
        .unwrap();
    assert_eq!(answer.attempts(), 3);
    let bodies: Vec<_> = mock.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, vec![Bytes::from("abcdef"); 3]);
}

#[tokio::test]
async fn one_shot_bodies_are_sent_once() {
    let mock = MockTransport::new();
    mock.on(Method::PUT, "/x").respond(503, "");
    let body = Body::from_stream_once(None, futures::stream::iter([Ok(Bytes::from("x"))]).boxed());
    let (r, sleeper) = retrying(&mock, RetryPolicy::default());
    let answer = r
        .send(Request::put(url("http://api.test/x")).body(body))
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.attempts(), 1);
    assert!(sleeper.sleeps().is_empty());
}

#[tokio::test]
async fn no_retries_policy_sends_once() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x").respond(503, "");
    let (r, _) = retrying(&mock, RetryPolicy::no_retries());
    assert_eq!(r.send(get()).await.unwrap().attempts(), 1);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn real_sleeper_waits_retry_after_zero_without_delay() {
    // The default (tokio) sleeper with a zero wait: exercises the real path
    // without slowing the suite.
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x")
        .times(1)
        .response_header("retry-after", "0")
        .respond(503, "");
    mock.on(Method::GET, "/x").respond(200, "");
    let r = Retrying::new(mock, RetryPolicy::default());
    let started = std::time::Instant::now();
    assert_eq!(r.send(get()).await.unwrap().attempts(), 2);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn overload_signs_are_counted_as_congestion_with_their_retry_after() {
    let mock = MockTransport::new();
    mock.on(Method::GET, "/x")
        .times(1)
        .response_header("retry-after", "2")
        .respond(429, "slow down");
    mock.on(Method::GET, "/x").times(1).respond(503, "busy");
    mock.on(Method::GET, "/x").times(1).respond(500, "broken");
    mock.on(Method::GET, "/x").times(1).fail(ErrorKind::Timeout);
    mock.on(Method::GET, "/x").respond(200, "ok");
    let (r, _) = retrying(&mock, RetryPolicy::default());
    assert_eq!(r.stats().congestion(), 0);
    assert_eq!(r.stats().last_retry_after(), None);
    let answer = r.send(get()).await.unwrap();
    assert_eq!(answer.attempts(), 5);
    // 429, 503 and the timeout; the 500 is a failure, not overload.
    assert_eq!(r.stats().congestion(), 3);
    assert_eq!(r.stats().last_retry_after(), Some(Duration::from_secs(2)));
}
