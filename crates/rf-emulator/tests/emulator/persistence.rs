//! Persistence: state survives a restart, a job cut off by a restart
//! resumes, a temporary data dir goes with its emulator, expired batches
//! disappear. (Crashes: see `crash`.)

use super::*;

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::for_tests().with_data_dir(dir.path());
    let env = start_with(config.clone()).await;
    env.upload_image("keep", "a.png", png(3, 3, 1), "file")
        .await;
    env.put_shard("keep-sh", tar_of(&[("b.png", png(3, 3, 2))]))
        .await;
    env.wait_count("keep-sh", 1).await;
    env.post(
        &env.bp("jobs/pj"),
        &[],
        Some(image_job("keep", "image-properties", "jsonl")),
    )
    .await;
    env.wait_job("pj").await;
    let (_, list) = env.get(&env.ds("batches/keep/list"), &[]).await;
    let url = list["filesMetadata"][0]["downloadURL"]
        .as_str()
        .unwrap()
        .to_string();
    env.emu.shutdown().await;

    let env = start_with(config).await;
    assert_eq!(env.count("keep").await, 1);
    assert_eq!(env.count("keep-sh").await, 1);
    let (_, j) = env.get(&env.bp("jobs/pj"), &[]).await;
    assert_eq!(j["job"]["isTerminal"], true);
    assert_eq!(j["job"]["error"], false);
    // signed URLs stay valid across restarts (the key is in the data dir); the port changed
    let path = &url[url.find("/_signed/").unwrap()..];
    let (s, bytes) = env
        .download(&format!("{}{}", env.base().trim_end_matches('/'), path))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bytes, png(3, 3, 1));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn a_job_cut_off_by_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmulatorConfig::for_tests().with_data_dir(dir.path());
    config.job_speed.item_delay = Duration::from_millis(50);
    let env = start_with(config.clone()).await;
    for i in 0..20u8 {
        env.upload_image("resume", &format!("{i}.png"), png(2, 2, i), "file")
            .await;
    }
    env.post(
        &env.bp("jobs/rj"),
        &[],
        Some(image_job("resume", "image-properties", "jsonl")),
    )
    .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, j) = env.get(&env.bp("jobs/rj"), &[]).await;
        if j["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.emu.shutdown().await;

    config.job_speed.item_delay = Duration::ZERO;
    let env = start_with(config).await;
    let done = env.wait_job("rj").await;
    assert_eq!(done["job"]["error"], false, "{done}");
    let bytes = env.first_output("rj", 0).await;
    assert_eq!(String::from_utf8(bytes).unwrap().lines().count(), 20);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn dropping_the_emulator_removes_its_temporary_data_dir() {
    let env = start().await;
    env.upload_image("tmp", "a.png", png(2, 2, 1), "file").await;
    let dir = env.emu.state().data_dir().to_path_buf();
    assert!(dir.join("blobs").exists());
    drop(env);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while dir.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} still exists",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn expired_batches_disappear() {
    let mut config = EmulatorConfig::for_tests();
    config.batch_ttl = Duration::from_millis(300);
    let env = start_with(config).await;
    assert_eq!(
        env.upload_image("short", "a.png", png(1, 1, 1), "file")
            .await
            .0,
        StatusCode::OK
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (s, _) = env.get(&env.ds("batches/short"), &[]).await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, all) = env.get(&env.ds("batches"), &[]).await;
    assert_eq!(all["batches"], json!([]));
    env.emu.shutdown().await;
}
