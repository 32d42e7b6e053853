//! The whole pipeline against the emulator over real HTTP on loopback:
//! images (single and bulk), videos, resume and cancellation. The emulator
//! counts a resent shard twice, so exact final counts prove nothing was sent
//! twice.

mod common;

use common::*;
use futures::TryStreamExt;
use rf_batch::ingest::{MediaKind, ModeChoice, UploadMode};
use rf_batch::{CancellationToken, Client, Error, Event, Pipeline};
use rf_emulator::RunningEmulator;
use tokio::sync::mpsc;

/// A client over reqwest on loopback for `emu`.
fn client_for(emu: &RunningEmulator) -> Client {
    Client::new(
        rf_transport::ReqwestTransport::new().unwrap(),
        emu.base_url().as_str(),
        emu.api_key(),
    )
    .unwrap()
}

/// Collects every event of a run in the background.
fn collector() -> (mpsc::Sender<Event>, tokio::task::JoinHandle<Vec<Event>>) {
    let (tx, mut rx) = mpsc::channel(64);
    let handle = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(e) = rx.recv().await {
            all.push(e);
        }
        all
    });
    (tx, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_image_set_end_to_end_then_resume_sends_nothing() {
    let emu = start_emulator().await;
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let n = copy_samples(input.path()) as u64;
    let client = client_for(&emu);
    let cfg = config(input.path(), out.path(), "image-properties");

    let (tx, events) = collector();
    let report = Pipeline::new(client.clone(), cfg.clone())
        .events(tx)
        .run()
        .await
        .unwrap();
    let events = events.await.unwrap();
    assert_eq!(report.mode, Some(UploadMode::Single));
    assert_eq!((report.expected_count, report.confirmed_count), (n, n));
    assert_eq!(report.uploaded_now, n);
    assert!(!report.resumed);
    assert!(report.downloaded_now > 0, "{report:?}");
    assert!(report.extracted_files > 0, "{report:?}");
    assert!(report.refused_entries.is_empty());
    assert!(!files_under(out.path()).is_empty());
    assert!(matches!(
        events.first(),
        Some(Event::RunStarted { resumed: false, .. })
    ));
    assert!(events.iter().any(|e| matches!(e, Event::JobCreated { .. })));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::JobFinished { error: false, .. }))
    );
    assert!(events.iter().any(|e| matches!(e, Event::JobProgress(_))));
    let finished_uploads = events
        .iter()
        .filter(|e| matches!(e, Event::UploadFinished { .. }))
        .count() as u64;
    assert_eq!(finished_uploads, n);

    // `frame_000.jpg` and `street/frame_000.jpg` both arrived: no collision.
    let listed: Vec<_> = client
        .staging()
        .list_files(&report.batch_id, None)
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<_> = listed.iter().map(|f| f.file_name.clone()).collect();
    names.sort();
    assert!(names.contains(&"frame_000.jpg".to_string()), "{names:?}");
    assert!(
        names.contains(&"street__frame_000.jpg".to_string()),
        "{names:?}"
    );

    // Same command again: resumes, uploads and downloads nothing.
    let again = Pipeline::new(client.clone(), cfg).run().await.unwrap();
    assert!(again.resumed);
    assert_eq!(again.batch_id, report.batch_id);
    assert_eq!(again.job_id, report.job_id);
    assert_eq!((again.uploaded_now, again.uploaded_before), (0, n));
    assert_eq!(again.downloaded_now, 0);
    assert_eq!(again.downloaded_before, report.downloaded_now);
    assert_eq!(
        client
            .staging()
            .count(&report.batch_id, None)
            .await
            .unwrap(),
        n
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_set_goes_in_balanced_shards() {
    let emu = start_emulator().await;
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    make_images(input.path(), 70);
    let client = client_for(&emu);
    let mut cfg = config(input.path(), out.path(), "mock-detector");
    cfg.plan.max_images_per_shard = 25;
    let report = Pipeline::new(client.clone(), cfg).run().await.unwrap();
    assert_eq!(report.mode, Some(UploadMode::Bulk));
    assert_eq!(report.shards_uploaded_now, 3);
    assert_eq!(report.confirmed_count, 70);
    let shards: Vec<_> = client
        .staging()
        .shards(&report.batch_id)
        .try_collect()
        .await
        .unwrap();
    let mut sizes: Vec<u64> = shards.iter().map(|s| s.shard_objects_count).collect();
    sizes.sort();
    assert_eq!(sizes, [23, 23, 24]);
    assert!(report.extracted_files > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_stream_to_signed_urls_and_run_a_video_job() {
    let emu = start_emulator().await;
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    make_video(&input.path().join("cam/a.mp4"), 300_000);
    make_video(&input.path().join("b.MOV"), 1000);
    std::fs::write(input.path().join("notes.txt"), b"not media").unwrap();
    let client = client_for(&emu);
    let mut cfg = config(input.path(), out.path(), "video-properties");
    cfg.job.max_video_fps = Some(2.0);
    let report = Pipeline::new(client.clone(), cfg).run().await.unwrap();
    assert_eq!(report.videos_found, 2);
    assert_eq!(report.confirmed_count, 2);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].relative, "notes.txt");
    assert!(report.downloaded_now > 0);
    let batch = client.staging().batch(&report.batch_id).await.unwrap();
    assert_eq!(batch.batch_content_type, rf_types::ContentType::Videos);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_resumes_without_duplicates() {
    let emu = start_emulator().await;
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    make_images(input.path(), 60);
    let client = client_for(&emu);
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.plan.mode = ModeChoice::Bulk;
    cfg.plan.max_images_per_shard = 10;
    cfg.upload.concurrency = 1;

    // Cancel as soon as the second shard is recorded.
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(16);
    let token = cancel.clone();
    let watcher = tokio::spawn(async move {
        let mut done = 0;
        while let Some(e) = rx.recv().await {
            if matches!(e, Event::UploadFinished { .. }) {
                done += 1;
                if done == 2 {
                    token.cancel();
                }
            }
        }
    });
    let err = Pipeline::new(client.clone(), cfg.clone())
        .events(tx)
        .cancel_token(cancel)
        .run()
        .await
        .unwrap_err();
    watcher.await.unwrap();
    assert!(matches!(err, Error::Cancelled), "{err}");

    let report = Pipeline::new(client.clone(), cfg).run().await.unwrap();
    assert!(report.resumed);
    assert!(report.uploaded_before >= 20, "{report:?}");
    assert_eq!(report.uploaded_before + report.uploaded_now, 60);
    assert_eq!(report.confirmed_count, 60);
    assert_eq!(
        client
            .staging()
            .count(&report.batch_id, None)
            .await
            .unwrap(),
        60
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_kind_and_foreign_state_are_handled() {
    let emu = start_emulator().await;
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    make_images(input.path(), 3);
    make_video(&input.path().join("v.mp4"), 500);
    let client = client_for(&emu);
    let mut cfg = config(input.path(), out.path(), "image-properties");
    cfg.kind = Some(MediaKind::Image);
    cfg.skip_export = true;
    let report = Pipeline::new(client.clone(), cfg.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(report.confirmed_count, 3);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("1 videos skipped")),
        "{:?}",
        report.warnings
    );

    // The same output directory for another workflow is refused, not mixed.
    let mut other = cfg.clone();
    other.workflow_id = "mock-detector".into();
    let err = Pipeline::new(client.clone(), other)
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ForeignRun { .. }), "{err}");

    // An output directory inside the input directory is refused.
    let inside = config(input.path(), &input.path().join("out"), "image-properties");
    let err = Pipeline::new(client, inside).run().await.unwrap_err();
    assert!(
        err.to_string().contains("inside the input directory"),
        "{err}"
    );
}
