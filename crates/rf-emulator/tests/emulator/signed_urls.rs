//! Signed URLs: tampered tokens, missing headers, wrong methods and
//! expired URLs are refused.

use super::*;

#[tokio::test]
async fn tampering_missing_headers_and_wrong_method_are_403() {
    let env = start().await;
    let (url, headers) = env.signed_url("s1", "bulk-upload/image-files", None).await;
    let tar = tar_of(&[("a.png", png(1, 1, 1))]);
    let (s, b) = env.put(&url, &BTreeMap::new(), tar.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("X-Goog-Content-Length-Range"),
        "{b}"
    );
    let mut wrong = headers.clone();
    wrong.insert("X-Goog-Content-Length-Range".into(), "0,1".into());
    assert_eq!(
        env.put(&url, &wrong, tar.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    // flip a character of the payload
    let idx = url.find("/_signed/").unwrap() + 12;
    let mut t = url.clone().into_bytes();
    t[idx] = if t[idx] == b'0' { b'1' } else { b'0' };
    let (s, b) = env
        .put(&String::from_utf8(t).unwrap(), &headers, tar.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(b["error"].as_str().unwrap().contains("signature"), "{b}");
    assert_eq!(
        env.put(&format!("{url}x"), &headers, tar.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    // an upload URL is not a download URL
    let (s, _) = env.download(&url).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // and it works with the handed-out headers
    assert_eq!(env.put(&url, &headers, tar).await.0, StatusCode::OK);
    env.wait_count("s1", 1).await;
    // download URLs do not accept PUT
    let (_, list) = env.get(&env.ds("batches/s1/list"), &[]).await;
    let dl = list["filesMetadata"][0]["downloadURL"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.put(&dl, &headers, vec![1]).await.0,
        StatusCode::FORBIDDEN
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn expired_urls_are_403() {
    let mut config = EmulatorConfig::for_tests();
    config.signed_url_ttl = Duration::ZERO;
    let env = start_with(config).await;
    let (url, headers) = env.signed_url("s2", "bulk-upload/image-files", None).await;
    let tar = tar_of(&[("a.png", png(1, 1, 1))]);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (s, b) = env.put(&url, &headers, tar.clone()).await;
        if s == StatusCode::FORBIDDEN {
            assert!(b["error"].as_str().unwrap().contains("expired"), "{b}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.emu.shutdown().await;
}
