//! Orchestration over a transport written in this file's helper
//! (`common/fake.rs`), as a user would write one: planning, tar shards on the
//! wire, in-run retries of failed shards, resume after failures and dropped
//! connections (no loss, no duplicates), count timeouts that name what is
//! missing, download length checks.

use std::io::Read;

use crate::common::fake::{FakeService, PutFault};
use crate::common::{config, make_images, scratch_dirs};
use rf_batch::ingest::{ModeChoice, UploadMode};
use rf_batch::state::Manifest;
use rf_batch::{Client, Error, Event, Pipeline, RunConfig};

fn client(fake: &FakeService) -> Client {
    Client::new(fake.clone(), fake.base_url(), "fake-key").unwrap()
}

fn bulk_config(input: &std::path::Path, out: &std::path::Path, per_shard: usize) -> RunConfig {
    let mut c = config(input, out, "wf");
    c.plan.mode = ModeChoice::Bulk;
    c.plan.max_images_per_shard = per_shard;
    c.count_poll = crate::common::fast_poll(5);
    c
}

#[tokio::test]
async fn full_run_over_a_custom_transport() {
    let fake = FakeService::new();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 40);
    let mut cfg = bulk_config(input.path(), out.path(), 15);
    cfg.staging_notifications_url = Some("https://hooks.example/staging".into());
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    assert_eq!(report.mode, Some(UploadMode::Bulk));
    assert_eq!(
        (report.shards_uploaded_now, report.confirmed_count),
        (3, 40)
    );

    let st = fake.state.lock().unwrap();
    assert_eq!(st.workspace_lookups, 1, "workspace resolved once");
    assert_eq!(st.shard_members.len(), 3);
    // balanced shards, flat names keeping the relative path, scan order
    let mut sizes: Vec<usize> = st.shard_members.iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, [13, 13, 14]);
    assert!(st.shard_members.iter().any(|m| m[0] == "d0__img_0000.jpg"));
    // Content-Length was sent and equals the tar length
    assert_eq!(st.put_lengths.len(), 3);
    for (announced, received) in &st.put_lengths {
        assert_eq!(*announced, Some(*received), "exact length known in advance");
    }
    assert_eq!(st.count(&report.batch_id), 40);
    assert_eq!(
        st.notification_configs, 3,
        "every shard registers the webhook"
    );
    let (def, _) = &st.jobs[&report.job_id];
    assert_eq!(def["jobInput"]["batchId"], report.batch_id.as_str());
    assert_eq!(def["processingSpecification"]["workflowId"], "wf");
    drop(st);

    // results: one JSON per item, unpacked under the part directory
    let results = out.path().join("results/results");
    let n = std::fs::read_dir(&results).unwrap().count();
    assert_eq!(n, 40);
    let mut s = String::new();
    std::fs::File::open(results.join("d0__img_0000.jpg.json"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert!(s.contains("d0__img_0000.jpg"));
}

#[tokio::test]
async fn failed_shards_are_retried_in_the_same_run() {
    let fake = FakeService::new();
    fake.state.lock().unwrap().faults =
        [PutFault::Unavailable, PutFault::None, PutFault::Unavailable]
            .into_iter()
            .collect();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 30);
    let mut cfg = bulk_config(input.path(), out.path(), 10);
    cfg.upload.concurrency = rf_batch::limit::Concurrency::Fixed(1);
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    let st = fake.state.lock().unwrap();
    assert_eq!(st.puts(), 5, "3 shards, 2 of them sent twice");
    assert_eq!(st.count(&report.batch_id), 30, "no duplicates");
    assert_eq!(report.shards_uploaded_now, 3);
}

#[tokio::test]
async fn the_upload_limit_keeps_its_level_across_rounds() {
    // Ten shards refused with 503 in the first round, with no retry within
    // it: the adaptive limit is cut, and the second round, which sends them
    // again, runs under the same limit (a fresh one would report no cut).
    let fake = FakeService::new();
    fake.state.lock().unwrap().faults = std::iter::repeat_n(PutFault::Unavailable, 10).collect();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 300);
    let mut cfg = bulk_config(input.path(), out.path(), 10);
    cfg.upload.attempts = 1;
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    let st = fake.state.lock().unwrap();
    assert_eq!(st.puts(), 40, "30 shards, 10 of them sent again");
    assert_eq!(st.count(&report.batch_id), 300, "no duplicates");
    let limit = report.upload_concurrency.expect("an adaptive upload limit");
    assert!(
        limit.decreases >= 1 && limit.settled < rf_batch::limit::DEFAULT_INITIAL,
        "the second round kept the first round's cut: {limit:?}"
    );
}

#[tokio::test]
async fn resume_after_failures_uploads_only_the_rest() {
    let fake = FakeService::new();
    {
        let mut st = fake.state.lock().unwrap();
        st.faults = [PutFault::None, PutFault::None].into_iter().collect();
        st.default_fault = Some(PutFault::Unavailable);
    }
    let (input, out) = scratch_dirs();
    make_images(input.path(), 50);
    let mut cfg = bulk_config(input.path(), out.path(), 10);
    cfg.upload.concurrency = rf_batch::limit::Concurrency::Fixed(1);
    cfg.upload.attempts = 1;
    let (partial, outcome) = Pipeline::new(client(&fake), cfg.clone())
        .run_with_report()
        .await;
    let err = outcome.unwrap_err();
    assert_eq!(partial.uploaded_now, 20);
    assert_eq!(partial.failures.len(), 3);
    assert!(
        partial.failures[0].starts_with("upload shard 2:"),
        "{:?}",
        partial.failures
    );
    assert!(!partial.batch_id.is_empty());
    match &err {
        Error::UploadsFailed {
            failed,
            total,
            first,
        } => {
            assert_eq!((*failed, *total), (3, 5));
            assert!(first.starts_with("shard 2:"), "{first}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("re-run"), "{err}");
    let manifest = Manifest::load(&cfg.state_file()).unwrap().unwrap();
    assert_eq!(manifest.uploaded_count(), 20);

    fake.state.lock().unwrap().default_fault = None;
    let puts_before = fake.state.lock().unwrap().puts();
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    let st = fake.state.lock().unwrap();
    assert_eq!(st.puts() - puts_before, 3, "only the three missing shards");
    assert_eq!((report.uploaded_before, report.uploaded_now), (20, 30));
    assert_eq!(
        st.count(&report.batch_id),
        50,
        "nothing lost, nothing twice"
    );
}

#[tokio::test]
async fn dropped_connection_after_delivery_is_not_resent() {
    let fake = FakeService::new();
    fake.state.lock().unwrap().faults = [PutFault::None, PutFault::DropAfterStore]
        .into_iter()
        .collect();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 30);
    let mut cfg = bulk_config(input.path(), out.path(), 10);
    cfg.upload.concurrency = rf_batch::limit::Concurrency::Fixed(1);
    // The run checks the batch for the shard whose answer was lost, finds it,
    // and completes in one go without sending it again.
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let report = Pipeline::new(client(&fake), cfg)
        .events(tx)
        .run()
        .await
        .unwrap();
    let mut warnings = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Event::Warning { message } = e {
            warnings.push(message);
        }
    }
    let st = fake.state.lock().unwrap();
    assert_eq!(
        st.puts(),
        3,
        "the delivered shard was found in the batch listing, not resent"
    );
    assert_eq!(st.count(&report.batch_id), 30);
    assert_eq!(report.upload_retries, 0);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("shard 1 had reached the service")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn count_timeout_names_shards_and_failed_files() {
    let fake = FakeService::new();
    fake.state.lock().unwrap().hide_from_count = 2;
    let (input, out) = scratch_dirs();
    make_images(input.path(), 12);
    let mut cfg = bulk_config(input.path(), out.path(), 6);
    cfg.count_poll = rf_batch::wait::PollOptions {
        timeout: Some(std::time::Duration::from_millis(150)),
        ..crate::common::fast_poll(1)
    };
    // the fake reports a failed file in the shard metadata
    let err = {
        let f2 = fake.clone();
        let run = Pipeline::new(client(&fake), cfg.clone()).run();
        tokio::pin!(run);
        // mark failures once the shards exist
        loop {
            tokio::select! {
                r = &mut run => break r.unwrap_err(),
                _ = tokio::task::yield_now() => {
                    let mut st = f2.state.lock().unwrap();
                    for shards in st.shards.values_mut() {
                        if let Some(s) = shards.first_mut() {
                            s["statusType"] = "error".into();
                            s["statusMetadata"] = serde_json::json!({"failedFiles": [
                                {"fileName": "d0__img_0000.jpg", "reason": "corrupt"}]});
                        }
                    }
                }
            }
        }
    };
    let Error::CountTimeout(t) = &err else {
        panic!("unexpected {err}");
    };
    assert_eq!((t.expected, t.counted), (12, 10));
    assert_eq!(t.shards.len(), 2);
    assert_eq!(t.failed_files, ["d0__img_0000.jpg (corrupt)"]);
    let msg = err.to_string();
    assert!(msg.contains("10 of 12"), "{msg}");
    assert!(msg.contains("shard-0 error/shard-ingested"), "{msg}");
    assert!(msg.contains("d0__img_0000.jpg (corrupt)"), "{msg}");

    // Once the service catches up, re-running just confirms the count.
    fake.state.lock().unwrap().hide_from_count = 0;
    let puts = fake.state.lock().unwrap().puts();
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    assert_eq!(report.confirmed_count, 12);
    assert_eq!(fake.state.lock().unwrap().puts(), puts);
}

#[tokio::test]
async fn truncated_download_is_refused_then_fetched_on_rerun() {
    let fake = FakeService::new();
    fake.state.lock().unwrap().truncate_downloads = true;
    let (input, out) = scratch_dirs();
    make_images(input.path(), 5);
    let cfg = config(input.path(), out.path(), "wf");
    let err = Pipeline::new(client(&fake), cfg.clone())
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DownloadsFailed { failed: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    let gets = |fake: &FakeService| {
        fake.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(m, p)| m == "GET" && p.starts_with("/download/"))
            .count()
    };
    assert_eq!(gets(&fake), 3, "three attempts, like the official client");
    assert!(!out.path().join("results/results").exists());

    // leftovers of a crashed download are cleaned up by the next run
    std::fs::create_dir_all(out.path().join("results")).unwrap();
    std::fs::write(out.path().join("results/.rf-part-deadbeef"), b"partial").unwrap();
    fake.state.lock().unwrap().truncate_downloads = false;
    let report = Pipeline::new(client(&fake), cfg).run().await.unwrap();
    assert_eq!((report.downloaded_now, report.uploaded_now), (1, 0));
    assert_eq!(report.extracted_files, 5);
    assert!(!out.path().join("results/.rf-part-deadbeef").exists());
    // single mode (5 images): uploads were multipart POSTs, not PUTs
    assert_eq!(report.mode, Some(UploadMode::Single));
    assert_eq!(fake.state.lock().unwrap().puts(), 0);
}

#[tokio::test]
async fn changed_inputs_are_detected_on_resume() {
    let fake = FakeService::new();
    let (input, out) = scratch_dirs();
    make_images(input.path(), 4);
    let mut cfg = config(input.path(), out.path(), "wf");
    cfg.skip_export = true;
    Pipeline::new(client(&fake), cfg.clone())
        .run()
        .await
        .unwrap();
    // touch one uploaded file with new content, add one file
    std::fs::write(input.path().join("d0/img_0000.jpg"), b"changed bytes").unwrap();
    make_images(&input.path().join("new"), 1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let report = Pipeline::new(client(&fake), cfg)
        .events(tx)
        .run()
        .await
        .unwrap();
    let mut changed = None;
    while let Ok(e) = rx.try_recv() {
        if let Event::InputChanged {
            changed_after_upload,
            added,
            ..
        } = e
        {
            changed = Some((changed_after_upload, added));
        }
    }
    let (after, added) = changed.expect("input change reported");
    assert_eq!(after, ["d0/img_0000.jpg"]);
    assert_eq!(added, ["new/d0/img_0000.jpg"]);
    assert_eq!(report.uploaded_now, 1);
    assert_eq!(report.confirmed_count, 5);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("changed after they were uploaded"))
    );
}
