//! A base URL with a path prefix is served under that prefix.

use super::*;

#[tokio::test]
async fn a_base_url_with_a_path_prefix_is_served() {
    let mut config = EmulatorConfig::for_tests();
    // the host part is only written into signed URLs; find a free port first
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    config.public_base_url = Some(format!("http://{addr}/api/").parse().unwrap());
    let emu = Emulator::start(config, addr).await.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for root in [
        format!("http://{addr}/api"),
        format!("http://{addr}/api/"),
        format!("http://{addr}/"),
    ] {
        let r = http
            .get(&root)
            .query(&[("api_key", "test-key")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{root}");
        assert_eq!(r.json::<Value>().await.unwrap()["workspace"], "test-ws");
    }
    let url = format!(
        "http://{addr}/api/data-staging/v1/external/test-ws/batches/p1/bulk-upload/image-files"
    );
    let r: Value = http
        .post(&url)
        .query(&[("api_key", "test-key")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload = r["signedURLDetails"]["uploadURL"].as_str().unwrap();
    assert!(
        upload.starts_with(&format!("http://{addr}/api/_signed/")),
        "{upload}"
    );
    let r = http
        .put(upload)
        .header(
            "X-Goog-Content-Length-Range",
            r["signedURLDetails"]["extensionHeaders"]["X-Goog-Content-Length-Range"]
                .as_str()
                .unwrap(),
        )
        .body(tar_of(&[("a.png", png(1, 1, 1))]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    emu.shutdown().await;
}
