//! Cleartext HTTP/2 (h2c with prior knowledge) beside HTTP/1.1 on the same
//! port: the API and signed transfers answer both, and HTTP/2's requests
//! share one connection.

use reqwest::{StatusCode, Version};
use rf_emulator::{EmulatorConfig, ShapingConfig};

use crate::support::{Env, start_with, tar_of};

fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// The status and HTTP version of `GET batches` through `env`'s client.
async fn list_batches(env: &Env) -> (StatusCode, Version) {
    let answer = env
        .http
        .get(env.ds("batches"))
        .query(&[("api_key", "test-key")])
        .send()
        .await
        .unwrap();
    (answer.status(), answer.version())
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_beside_http1() {
    let env = start_with(EmulatorConfig::for_tests()).await;
    assert_eq!(list_batches(&env).await, (StatusCode::OK, Version::HTTP_11));
    let h2 = Env {
        emu: env.emu,
        http: h2_client(),
    };
    assert_eq!(list_batches(&h2).await, (StatusCode::OK, Version::HTTP_2));
    // A shard up and a file back down, over HTTP/2.
    let image = crate::support::png(4, 4, 1);
    h2.put_shard("h2", tar_of(&[("a.png", image.clone())]))
        .await;
    h2.wait_count("h2", 1).await;
    let (_, list) = h2.get(&h2.ds("batches/h2/list"), &[]).await;
    let url = list["filesMetadata"][0]["downloadURL"].as_str().unwrap();
    let (s, got) = h2.download(url).await;
    assert_eq!((s, got), (StatusCode::OK, image));
    let stats = h2.emu.state().stats();
    assert!(stats.http2_requests >= 6, "{stats:?}");
    assert_eq!(
        stats.requests - stats.http2_requests,
        1,
        "all but the first request came over HTTP/2"
    );
    h2.emu.shutdown().await;
}

#[tokio::test]
async fn http2_requests_in_flight_share_one_connection() {
    // The connection cap would hold a second connection back: 16 requests
    // at once are all answered over the first.
    let shaping = ShapingConfig {
        max_connections: Some(1),
        ..ShapingConfig::default()
    };
    let env = start_with(EmulatorConfig::for_tests().with_shaping(shaping)).await;
    let http = h2_client();
    let url = env.ds("batches");
    let answers = futures::future::join_all((0..16).map(|_| {
        http.get(url.as_str())
            .query(&[("api_key", "test-key")])
            .send()
    }))
    .await;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(
            (answer.status(), answer.version()),
            (StatusCode::OK, Version::HTTP_2)
        );
    }
    let shaping = env.emu.state().stats().shaping.expect("shaping is on");
    assert_eq!(shaping.connections_accepted, 1, "{shaping:?}");
    env.emu.shutdown().await;
}
