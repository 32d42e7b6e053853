//! Webhook destinations: loopback only unless allowed, no redirects
//! followed, refusals recorded in the job log.

use super::*;

/// A loopback server answering every POST with a 307 to `location`;
/// returns its URL and the number of calls it got.
async fn redirector(location: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            let location = location.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, location)],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), hits)
}

#[tokio::test]
async fn a_non_loopback_notification_url_is_refused_and_logged() {
    let env = start().await;
    env.upload_image("in1", "a.png", png(2, 2, 1), "file").await;
    let mut body = image_job("in1", "image-properties", "jsonl");
    body["notificationsURL"] = json!("http://10.255.255.1:9/hook?token=s3cret");
    assert_eq!(
        env.post(&env.bp("jobs/far-hook"), &[], Some(body)).await.0,
        StatusCode::OK
    );
    env.wait_job("far-hook").await;
    let (_, logs) = env
        .get(&env.bp("jobs/far-hook/logs"), &[("severity", "warning")])
        .await;
    let logs = logs["logs"].as_array().unwrap();
    let refused = logs
        .iter()
        .find(|l| l["logType"] == "webhook-refused")
        .unwrap_or_else(|| panic!("no webhook-refused entry in {logs:?}"));
    let text = refused.to_string();
    assert!(text.contains("10.255.255.1"), "{text}");
    assert!(text.contains("not loopback"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_redirect_answer_is_not_followed() {
    let env = start().await;
    let (rx, target) = Receiver::start(0).await;
    let (hook, hits) = redirector(target).await;
    env.upload_image("in1", "a.png", png(2, 2, 1), "file").await;
    let mut body = image_job("in1", "image-properties", "jsonl");
    body["notificationsURL"] = json!(hook);
    assert_eq!(
        env.post(&env.bp("jobs/redirected"), &[], Some(body))
            .await
            .0,
        StatusCode::OK
    );
    env.wait_job("redirected").await;
    // every attempt (4 in the test configuration) reaches the redirector...
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while hits.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "attempts never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and none is followed to the redirect's target
    assert!(rx.calls.lock().unwrap().is_empty());
    env.emu.shutdown().await;
}
