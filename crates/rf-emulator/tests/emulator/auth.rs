//! Authentication: the workspace lookup and its keys, and a key never
//! seeing another workspace.

use super::*;

#[tokio::test]
async fn workspace_lookup_and_keys() {
    let env = start_with(EmulatorConfig::for_tests().with_key("other-key", "other-ws")).await;
    let (s, b) = env.get(&env.base(), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["workspace"], "test-ws");
    // Bearer header instead of the query parameter
    let r = env
        .http
        .get(env.base())
        .bearer_auth("other-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["workspace"], "other-ws");
    // missing and wrong keys
    let r = env.http.get(env.base()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = env.get_as(env.ds("batches"), "nope").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_key_never_sees_another_workspace() {
    let env = start_with(EmulatorConfig::for_tests().with_key("other-key", "other-ws")).await;
    let (s, _) = env
        .upload_image("mine", "a.png", png(2, 2, 1), "file")
        .await;
    assert_eq!(s, StatusCode::OK);
    // other key on test-ws paths: forbidden
    let r = env.get_as(env.ds("batches/mine"), "other-key").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // other key on its own workspace: the batch does not exist there
    let url = format!(
        "{}data-staging/v1/external/other-ws/batches/mine",
        env.base()
    );
    let r = env.get_as(&url, "other-key").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let url = format!("{}data-staging/v1/external/other-ws/batches", env.base());
    let r = env.get_as(&url, "other-key").await;
    assert_eq!(r.json::<Value>().await.unwrap()["batches"], json!([]));
    let url = format!("{}batch-processing/v1/external/other-ws/jobs", env.base());
    let r = env
        .http
        .get(&url)
        .bearer_auth("test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn stats_need_a_key_on_a_non_loopback_address() {
    let emu = Emulator::start(EmulatorConfig::for_tests(), "0.0.0.0:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!(
        "http://127.0.0.1:{}/_emulator/stats",
        emu.local_addr().port()
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let keyed = http.get(&url).bearer_auth("test-key").send().await.unwrap();
    assert_eq!(keyed.status(), StatusCode::OK);
    emu.shutdown().await;
    // on loopback the stats stay open
    let env = start().await;
    let open = env
        .http
        .get(format!("{}_emulator/stats", env.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    env.emu.shutdown().await;
}
