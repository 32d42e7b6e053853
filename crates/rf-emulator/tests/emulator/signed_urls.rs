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

#[tokio::test]
async fn a_token_signed_for_a_path_outside_the_blobs_is_refused() {
    use hmac::{KeyInit, Mac};
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..EmulatorConfig::for_tests()
    };
    let env = start_with(config).await;
    env.upload_image("fx", "a.png", png(2, 2, 1), "file").await;
    let (_, list) = env.get(&env.ds("batches/fx/list"), &[]).await;
    let url = list["filesMetadata"][0]["downloadURL"].as_str().unwrap();
    let token = url.rsplit("/_signed/").next().unwrap();
    let prefix = &url[..url.len() - token.len()];
    let payload = token.split_once('.').unwrap().0;
    let mut claims: Value = serde_json::from_slice(&hex::decode(payload).unwrap()).unwrap();
    let key = hex::decode(
        std::fs::read_to_string(dir.path().join("signing.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    for blob in ["../signing.key", "/etc/passwd", "../state.json"] {
        claims["grant"]["data"]["blob"] = json!(blob);
        claims["grant"]["data"]["offset"] = json!(0);
        claims["grant"]["data"]["len"] = json!(64);
        let payload = hex::encode(claims.to_string());
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(payload.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let (status, body) = env.download(&format!("{prefix}{payload}.{sig}")).await;
        assert!(status.is_client_error(), "{blob}: {status}");
        assert!(
            !String::from_utf8_lossy(&body).contains(&hex::encode(&key)),
            "{blob}"
        );
    }
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_re_upload_to_the_same_url_leaves_earlier_download_urls_on_their_bytes() {
    let env = start().await;
    let (url, headers) = env
        .signed_url("immut", "bulk-upload/image-files", None)
        .await;
    let first = png(4, 4, 1);
    let (s, _) = env
        .put(&url, &headers, tar_of(&[("a.png", first.clone())]))
        .await;
    assert_eq!(s, StatusCode::OK);
    env.wait_count("immut", 1).await;
    let (_, list) = env.get(&env.ds("batches/immut/list"), &[]).await;
    let old_url = list["filesMetadata"][0]["downloadURL"]
        .as_str()
        .unwrap()
        .to_string();
    // The same URL again, other content (a longer member first, so the
    // old byte range would now hold other bytes if the tar were rewritten).
    let (s, _) = env
        .put(
            &url,
            &headers,
            tar_of(&[("z.png", png(9, 9, 7)), ("a.png", png(5, 5, 2))]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    env.wait_count("immut", 2).await;
    let (s, bytes) = env.download(&old_url).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        bytes, first,
        "an earlier download URL now serves other bytes"
    );
    // The listing names the new content.
    let (_, list) = env.get(&env.ds("batches/immut/list"), &[]).await;
    let a = list["filesMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == "a.png")
        .unwrap();
    let (_, now) = env.download(a["downloadURL"].as_str().unwrap()).await;
    assert_eq!(now, png(5, 5, 2));
    env.emu.shutdown().await;
}
