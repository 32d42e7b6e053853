//! Batch Processing: jobs through processing and export, the built-in
//! workflows, CSV and JSONL results, failures, logs, abort, restart and the
//! job webhooks.

use super::*;
use std::io::Read;

fn untar_gz(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn life_cycle_through_export_and_download() {
    let env = start().await;
    let (rx, hook) = Receiver::start(1).await;
    for i in 0..3u8 {
        env.upload_image(
            "in1",
            &format!("img{i}.png"),
            png(10 + u32::from(i), 20, i),
            "file",
        )
        .await;
    }
    let mut body = image_job("in1", "image-properties", "jsonl");
    body["notificationsURL"] = json!(hook);
    let (s, b) = env
        .post(
            &env.bp("jobs/job-1"),
            &[("name", "my job")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // idempotent create, conflicting create
    assert_eq!(
        env.post(&env.bp("jobs/job-1"), &[], Some(body.clone()))
            .await
            .0,
        StatusCode::OK
    );
    let mut other = body.clone();
    other["processingSpecification"]["workflowId"] = json!("mock-detector");
    assert_eq!(
        env.post(&env.bp("jobs/job-1"), &[], Some(other)).await.0,
        StatusCode::CONFLICT
    );
    let done = env.wait_job("job-1").await;
    let job = &done["job"];
    assert_eq!(job["error"], false, "{done}");
    assert_eq!(job["name"], "my job");
    assert_eq!(job["plannedStages"], json!(["processing", "export"]));
    assert_eq!(job["jobDefinition"], body);
    assert_eq!(done["jobStatus"], "completed");
    assert_eq!(done["progress"], 1.0);
    let (_, stages) = env.get(&env.bp("jobs/job-1/stages"), &[]).await;
    let stages = stages["stages"].as_array().unwrap().clone();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["processingStageName"], "processing");
    assert_eq!(stages[1]["processingStageName"], "export");
    assert_eq!(stages[1]["statusType"], "success");
    let sid = stages[0]["processingStageId"].as_str().unwrap();
    let (_, tasks) = env
        .get(&env.bp(&format!("jobs/job-1/stages/{sid}/tasks")), &[])
        .await;
    assert!(tasks.as_object().unwrap().contains_key("nextPageToken"));
    assert_eq!(tasks["tasks"][0]["statusType"], "success");
    assert_eq!(tasks["tasks"][0]["progress"], 1.0);
    // export output: multipart batch, part "results", tar.gz archives
    let out = stages[1]["outputBatches"][0].as_str().unwrap();
    let (_, meta) = env.get(&env.ds(&format!("batches/{out}")), &[]).await;
    assert_eq!(meta["batch"]["batchType"], "multipart-batch");
    let (_, parts) = env.get(&env.ds(&format!("batches/{out}/parts")), &[]).await;
    assert_eq!(parts["batchParts"][0]["partName"], "results");
    assert_eq!(parts["batchParts"][0]["contentType"], "archives");
    let (_, c) = env
        .get(
            &env.ds(&format!("batches/{out}/count")),
            &[("partName", "results")],
        )
        .await;
    assert_eq!(c["count"], 1);
    let (s, _) = env
        .get(
            &env.ds(&format!("batches/{out}/count")),
            &[("partName", "nope")],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = env
        .get(
            &env.ds(&format!("batches/{out}/list")),
            &[("partName", "results")],
        )
        .await;
    let f = &list["filesMetadata"][0];
    assert!(f["fileName"].as_str().unwrap().ends_with(".tar.gz"));
    assert_eq!(f["partName"], "results");
    let (s, bytes) = env.download(f["downloadURL"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let members = untar_gz(&bytes);
    assert_eq!(members.len(), 1);
    assert!(!members[0].0.contains('/'));
    let lines: Vec<Value> = String::from_utf8(members[0].1.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let rec = lines.iter().find(|l| l["file_name"] == "img2.png").unwrap();
    assert_eq!(rec["width"], 12);
    assert_eq!(rec["height"], 20);
    assert_eq!(rec["format"], "png");
    assert_eq!(rec["channels"], 3);
    assert_eq!(rec["mean_colour"][0], 2.0, "{rec}");
    // job webhook: first attempt refused, second accepted, same event
    let calls = rx.wait_for(|c| c.len() >= 2).await;
    assert_eq!(calls[0].1["delivery_attempt"], 1);
    assert_eq!(calls[1].1["delivery_attempt"], 2);
    assert_eq!(calls[0].1["event_id"], calls[1].1["event_id"]);
    assert_eq!(calls[1].1["job_state"], "success");
    assert_eq!(calls[1].1["job_id"], "job-1");
    assert_eq!(calls[1].0.as_deref(), Some("Bearer rf_test-ws"));
    // jobs list
    let (_, jobs) = env.get(&env.bp("jobs"), &[("pageSize", "10")]).await;
    assert_eq!(jobs["jobs"][0]["jobId"], "job-1");
    assert!(jobs.as_object().unwrap().contains_key("nextPageToken"));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn detector_csv_over_shards() {
    let mut config = EmulatorConfig::for_tests();
    config.job_speed.results_per_archive = 1;
    let env = start_with(config).await;
    env.put_shard(
        "sh",
        tar_of(&[("a.png", png(100, 80, 1)), ("b.png", png(100, 80, 2))]),
    )
    .await;
    env.put_shard("sh", tar_of(&[("c.png", png(100, 80, 3))]))
        .await;
    env.wait_count("sh", 3).await;
    let done = env
        .run_job("det", image_job("sh", "color-blobs", "csv"))
        .await;
    assert_eq!(done["job"]["error"], false, "{done}");
    let (_, stages) = env.get(&env.bp("jobs/det/stages"), &[]).await;
    assert_eq!(stages["stages"][0]["tasksNumber"], 2, "one task per shard");
    assert_eq!(
        stages["stages"][1]["tasksNumber"], 2,
        "one archive per result file"
    );
    let proc_out = stages["stages"][0]["outputBatches"][0].as_str().unwrap();
    let (_, list) = env
        .get(
            &env.ds(&format!("batches/{proc_out}/list")),
            &[("partName", "results")],
        )
        .await;
    let mut rows = 0;
    for f in list["filesMetadata"].as_array().unwrap() {
        assert!(f["fileName"].as_str().unwrap().ends_with(".csv"));
        let (_, bytes) = env.download(f["downloadURL"].as_str().unwrap()).await;
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.starts_with("file_name,predictions,workflow_id\n"),
            "{text}"
        );
        rows += text.lines().count() - 1;
    }
    assert_eq!(rows, 3);
    env.emu.shutdown().await;
}

#[tokio::test]
async fn color_blobs_on_samples_and_undecodable_images_are_logged() {
    let env = start().await;
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/images/park");
    let sample = std::fs::read(format!("{samples}/park_001.png")).unwrap();
    assert_eq!(
        env.upload_image("blobs", "park_001.png", sample, "file")
            .await
            .0,
        StatusCode::OK
    );
    // a PNG signature and header without pixel data: accepted at upload, fails to decode
    let mut broken = png(4, 4, 1);
    broken.truncate(33);
    assert_eq!(
        env.upload_image("blobs", "broken.png", broken, "file")
            .await
            .0,
        StatusCode::OK
    );
    let done = env
        .run_job("blobs", image_job("blobs", "color-blobs", "jsonl"))
        .await;
    assert_eq!(done["job"]["error"], false, "{done}");
    let (_, logs) = env
        .get(&env.bp("jobs/blobs/logs"), &[("severity", "error")])
        .await;
    let failed = &logs["logs"][0];
    assert_eq!(failed["logType"], "image-processing-failed", "{logs}");
    assert_eq!(failed["payload"]["fileName"], "broken.png");
    assert_eq!(failed["taskId"], "processing-0001");
    let bytes = env.first_output("blobs", 0).await;
    let lines: Vec<Value> = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["file_name"], "park_001.png");
    let preds = lines[0]["predictions"]["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 6);
    assert_eq!(
        lines[0]["predictions"]["image"],
        json!({"width": 640, "height": 480})
    );
    for p in preds {
        for k in [
            "x",
            "y",
            "width",
            "height",
            "confidence",
            "class",
            "class_id",
            "detection_id",
        ] {
            assert!(p.get(k).is_some(), "{k} missing in {p}");
        }
    }
    env.emu.shutdown().await;
}

/// A tiny MP4: ftyp + moov(mvhd, trak(tkhd, mdia(hdlr vide, minf(stbl(stsz))))).
fn tiny_mp4(frames: u32, seconds: u32) -> Vec<u8> {
    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&(seconds * 1000).to_be_bytes());
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&(640u32 << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(360u32 << 16).to_be_bytes());
    let mut hdlr = vec![0u8; 24];
    hdlr[8..12].copy_from_slice(b"vide");
    let mut stsz = vec![0u8; 12];
    stsz[8..12].copy_from_slice(&frames.to_be_bytes());
    let minf = bx(b"minf", &bx(b"stbl", &bx(b"stsz", &stsz)));
    let mdia = bx(b"mdia", &[bx(b"hdlr", &hdlr), minf].concat());
    let trak = bx(b"trak", &[bx(b"tkhd", &tkhd), mdia].concat());
    let moov = bx(b"moov", &[bx(b"mvhd", &mvhd), trak].concat());
    [
        bx(b"ftyp", b"isom\0\0\0\0isom"),
        bx(b"mdat", &[7u8; 64]),
        moov,
    ]
    .concat()
}

#[tokio::test]
async fn video_job_samples_frames_at_max_fps() {
    let env = start().await;
    let (url, headers) = env
        .signed_url("clips", "upload/video", Some("clip.mp4"))
        .await;
    assert_eq!(
        env.put(&url, &headers, tiny_mp4(90, 3)).await.0,
        StatusCode::OK
    );
    let body = json!({
        "type": "simple-video-processing-v1",
        "jobInput": {"type": "staging-batch-input-v1", "batchId": "clips"},
        "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu"},
        "processingSpecification": {
            "type": "workflows-processing-specification-v1",
            "workspace": "test-ws",
            "workflowId": "video-properties",
            "persistImagesOutputs": false,
            "maxVideoFPS": 5
        }
    });
    assert_eq!(
        env.post(&env.bp("jobs/vid"), &[], Some(body)).await.0,
        StatusCode::OK
    );
    let done = env.wait_job("vid").await;
    assert_eq!(done["job"]["error"], false, "{done}");
    let (_, stages) = env.get(&env.bp("jobs/vid/stages"), &[]).await;
    assert_eq!(stages["stages"][0]["tasksNumber"], 1, "one task per video");
    let out = stages["stages"][0]["outputBatches"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (_, list) = env.get(&env.ds(&format!("batches/{out}/list")), &[]).await;
    let (_, bytes) = env
        .download(list["filesMetadata"][0]["downloadURL"].as_str().unwrap())
        .await;
    let rec: Value = serde_json::from_slice(
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(rec["file_name"], "clip.mp4");
    assert_eq!(rec["container"], "mp4");
    assert_eq!(rec["width"], 640);
    assert_eq!(rec["frame_count"], 90);
    assert_eq!(rec["fps"], 30.0);
    assert_eq!(rec["frames"].as_array().unwrap().len(), 15, "3 s at 5 fps");
    // an image workflow on a video batch fails clearly
    let mut img = image_job("clips", "image-properties", "jsonl");
    img["type"] = json!("simple-video-processing-v1");
    env.post(&env.bp("jobs/vid2"), &[], Some(img)).await;
    let failed = env.wait_job("vid2").await;
    assert_eq!(failed["job"]["error"], true);
    assert!(
        failed["job"]["lastNotification"]["message"]
            .as_str()
            .unwrap()
            .contains("runs on images"),
        "{failed}"
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn unknown_workflow_fails_with_log_and_webhook() {
    let mut config = EmulatorConfig::for_tests();
    config.webhooks.authorization = Some("Bearer custom-secret".into());
    let env = start_with(config).await;
    let (rx, hook) = Receiver::start(0).await;
    env.upload_image("in2", "a.png", png(2, 2, 1), "file").await;
    let mut body = image_job("in2", "no-such-flow", "jsonl");
    body["notificationsURL"] = json!(hook);
    assert_eq!(
        env.post(&env.bp("jobs/bad-wf"), &[], Some(body)).await.0,
        StatusCode::OK
    );
    let done = env.wait_job("bad-wf").await;
    assert_eq!(done["job"]["error"], true);
    assert_eq!(done["jobStatus"], "failed");
    assert!(
        done["job"]["lastNotification"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-flow")
    );
    let (_, logs) = env
        .get(&env.bp("jobs/bad-wf/logs"), &[("severity", "error")])
        .await;
    let logs = logs["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|l| l["severity"] == "error"));
    assert!(logs.iter().any(|l| l["logType"] == "workflow-not-found"));
    let (s, _) = env
        .get(&env.bp("jobs/bad-wf/logs"), &[("severity", "fatal")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let calls = rx.wait_for(|c| !c.is_empty()).await;
    assert_eq!(calls[0].1["job_state"], "fail");
    assert_eq!(calls[0].0.as_deref(), Some("Bearer custom-secret"));
    assert!(
        !format!(
            "{:?}",
            EmulatorConfig {
                webhooks: rf_emulator::WebhookConfig {
                    authorization: Some("Bearer custom-secret".into()),
                    ..Default::default()
                },
                ..EmulatorConfig::for_tests()
            }
        )
        .contains("custom-secret")
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn create_job_validation() {
    let env = start().await;
    env.upload_image("in3", "a.png", png(2, 2, 1), "file").await;
    let (s, _) = env
        .post(
            &env.bp("jobs/Bad_Job"),
            &[],
            Some(image_job("in3", "image-properties", "jsonl")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env
        .post(
            &env.bp("jobs/j1"),
            &[],
            Some(image_job("nope", "image-properties", "jsonl")),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let mut b = image_job("in3", "image-properties", "jsonl");
    b["maxImageFailureRate"] = json!(1.5);
    let (s, e) = env.post(&env.bp("jobs/j2"), &[], Some(b)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, e) = env
        .post(&env.bp("jobs/j3"), &[], Some(json!({"type": "mystery"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"].is_string());
    let (s, _) = env.get(&env.bp("jobs/unknown"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // TRT compilation runs as a single stage
    let trt = json!({"type": "trt-compilation-v1", "modelId": "p/3", "compilationDevices": ["nvidia-t4", "nvidia-l40s"]});
    assert_eq!(
        env.post(&env.bp("jobs/trt-1"), &[], Some(trt)).await.0,
        StatusCode::OK
    );
    let done = env.wait_job("trt-1").await;
    assert_eq!(done["job"]["error"], false);
    assert_eq!(done["job"]["plannedStages"], json!(["compilation"]));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn timeout_then_restart_with_overrides() {
    let mut config = EmulatorConfig::for_tests();
    config.job_speed.simulated_seconds_per_item = 1.0;
    let env = start_with(config).await;
    for i in 0..4u8 {
        env.upload_image("in4", &format!("{i}.png"), png(2, 2, i), "file")
            .await;
    }
    let mut body = image_job("in4", "image-properties", "jsonl");
    body["processingTimeoutSeconds"] = json!(2);
    assert_eq!(
        env.post(&env.bp("jobs/slow"), &[], Some(body)).await.0,
        StatusCode::OK
    );
    let done = env.wait_job("slow").await;
    assert_eq!(done["job"]["error"], true, "{done}");
    let (_, logs) = env
        .get(&env.bp("jobs/slow/logs"), &[("severity", "error")])
        .await;
    assert!(
        logs["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["logType"] == "processing-timeout"),
        "{logs}"
    );
    let (_, tasks) = env
        .get(&env.bp("jobs/slow/stages/processing/tasks"), &[])
        .await;
    assert!(
        tasks["tasks"][0]["statusType"]
            .as_str()
            .unwrap()
            .contains("error")
    );
    // restart without body is accepted and fails again; with a larger budget it succeeds
    let r = env
        .http
        .post(env.bp("jobs/slow/restart"))
        .query(&[("api_key", "test-key")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again = env.wait_job("slow").await;
    assert_eq!(again["job"]["error"], true);
    // `{}` (the roboflow client's body) overrides nothing, like no body.
    assert_eq!(
        env.post(&env.bp("jobs/slow/restart"), &[], Some(json!({})))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(env.wait_job("slow").await["job"]["error"], true);
    let over = json!({"type": "parameters-override-v1", "processingTimeoutSeconds": 100.0, "maxParallelTasks": 2});
    assert_eq!(
        env.post(&env.bp("jobs/slow/restart"), &[], Some(over.clone()))
            .await
            .0,
        StatusCode::OK
    );
    let ok = env.wait_job("slow").await;
    assert_eq!(ok["job"]["error"], false, "{ok}");
    assert_eq!(
        ok["job"]["restartParametersOverride"],
        json!([{}, {}, over])
    );
    // restarting a succeeded job is refused
    assert_eq!(
        env.post(&env.bp("jobs/slow/restart"), &[], None).await.0,
        StatusCode::CONFLICT
    );
    env.emu.shutdown().await;
}

#[tokio::test]
async fn max_parallel_tasks_is_honoured() {
    let mut config = EmulatorConfig::for_tests();
    config.job_speed.images_per_task = 1;
    config.job_speed.item_delay = Duration::from_millis(60);
    let env = start_with(config).await;
    for i in 0..6u8 {
        env.upload_image("par", &format!("{i}.png"), png(2, 2, i), "file")
            .await;
    }
    let mut body = image_job("par", "image-properties", "jsonl");
    body["maxParallelTasks"] = json!(1);
    env.post(&env.bp("jobs/par"), &[], Some(body)).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let (mut most, mut seen_running) = (0, false);
    loop {
        let (_, tasks) = env
            .get(&env.bp("jobs/par/stages/processing/tasks"), &[])
            .await;
        if let Some(list) = tasks["tasks"].as_array() {
            let running = list
                .iter()
                .filter(|t| t["statusType"] == "info" && !t["progress"].is_null())
                .count();
            most = most.max(running);
            seen_running |= running > 0;
            if list.len() == 6 && list.iter().all(|t| t["statusType"] == "success") {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{tasks}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_running, "never saw a running task");
    assert_eq!(most, 1, "more than maxParallelTasks tasks ran at once");
    env.emu.shutdown().await;
}

#[tokio::test]
async fn abort_stops_a_running_job() {
    let mut config = EmulatorConfig::for_tests();
    config.job_speed.item_delay = Duration::from_millis(100);
    let env = start_with(config).await;
    let (rx, hook) = Receiver::start(0).await;
    for i in 0..30u8 {
        env.upload_image("in5", &format!("{i}.png"), png(2, 2, i), "file")
            .await;
    }
    let mut body = image_job("in5", "image-properties", "jsonl");
    body["notificationsURL"] = json!(hook);
    assert_eq!(
        env.post(&env.bp("jobs/long"), &[], Some(body)).await.0,
        StatusCode::OK
    );
    // wait until it is visibly running
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, j) = env.get(&env.bp("jobs/long"), &[]).await;
        if j["job"]["currentStage"] == "processing" {
            assert_eq!(j["job"]["isTerminal"], false);
            assert_eq!(j["jobStatus"], "processing");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, b) = env.post(&env.bp("jobs/long/abort"), &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.is_object());
    let done = env.wait_job("long").await;
    assert_eq!(done["job"]["error"], true);
    assert!(
        done["job"]["lastNotification"]["message"]
            .as_str()
            .unwrap()
            .contains("abort")
    );
    // aborting again changes nothing
    assert_eq!(
        env.post(&env.bp("jobs/long/abort"), &[], None).await.0,
        StatusCode::OK
    );
    let calls = rx.wait_for(|c| !c.is_empty()).await;
    assert_eq!(calls[0].1["job_state"], "fail");
    let (_, logs) = env
        .get(&env.bp("jobs/long/logs"), &[("severity", "warning")])
        .await;
    assert_eq!(logs["logs"][0]["logType"], "job-aborted");
    env.emu.shutdown().await;
}
