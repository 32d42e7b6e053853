//! Ingest straight from a bucket, against real local object-store servers
//! (rf-testservers: moto for S3, fake-gcs-server, Azurite) and the emulator
//! over loopback, which fetches the presigned loopback URLs. Without the
//! servers installed these tests are skipped with a line saying so, except
//! under `CI=true`, where they fail (`cargo xtask testservers` installs them).

use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};
use rf_batch::cloud::{CloudError, CloudUrl, Store, open_with_env};
use rf_batch::ingest::{CloudIngestOptions, MediaKind, ingest_cloud};
use rf_batch::wait::wait_for_count;
use rf_batch::{CancellationToken, Context, Error};
use rf_types::BatchId;

use crate::common::*;

/// The test tree under `prefix`: five images (two with the same basename
/// in different folders), a text file, a hidden image, and an image outside
/// the prefix.
fn tree(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let (_, jpeg) = sample_images()
        .into_iter()
        .find(|(rel, _)| rel.ends_with(".jpg"))
        .unwrap();
    let keys = [
        "a/x.jpg",
        "b/x.jpg",
        "b/c/y.jpg",
        "z.JPG",
        "w.jpg",
        "notes.txt",
        ".hidden/h.jpg",
    ];
    let mut out: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|k| (format!("{prefix}/{k}"), jpeg.clone()))
        .collect();
    out.push(("elsewhere/o.jpg".to_owned(), jpeg));
    out
}

/// Puts [`tree`] into `store` through object_store.
async fn fill(store: &Store, prefix: &str) {
    for (key, bytes) in tree(prefix) {
        store
            .put(&StorePath::from(key), PutPayload::from(bytes))
            .await
            .unwrap();
    }
}

fn env_of(pairs: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Ingests `url` into a fresh batch in chunks of 2, checks the exact count
/// and that a re-run sends nothing, then that a chunk accepted but not
/// recorded is found on the service and not sent again.
async fn ingest_exact_and_resumable(url: &str, env: Vec<(String, String)>) {
    let url = CloudUrl::parse(url).unwrap();
    let store: Store = open_with_env(&url, env).unwrap();
    let emu = start_emulator().await;
    let client = http_client(&emu);
    let ctx = Context::new(client.clone());
    let dir = tempfile::tempdir().unwrap();
    let batch = BatchId::new("bucket").unwrap();
    let journal = dir.path().join("chunks.jsonl");
    let hooks = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let mut options = CloudIngestOptions::new(url, batch, MediaKind::Image, journal.clone());
    options.chunk_size = 2;
    options.notifications_url = Some(format!("{}/hook", hooks.uri()));
    let first = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    assert_eq!(first.references.references, 5);
    let chunks = first.references.requests;
    assert!((3..=5).contains(&chunks), "{chunks} chunks of at most 2");
    assert_eq!((first.listing.hidden, first.listing.other), (1, 1));
    let cancel = CancellationToken::new();
    let count = wait_for_count(&client, "bucket", 5, &fast_poll(60), &cancel, |_| {})
        .await
        .unwrap();
    assert_eq!(count, 5);
    let names: Vec<String> = {
        use futures::TryStreamExt;
        let mut n: Vec<String> = client
            .staging()
            .list_files("bucket", None)
            .map_ok(|f| f.file_name)
            .try_collect()
            .await
            .unwrap();
        n.sort();
        n
    };
    assert_eq!(
        names,
        ["a__x.jpg", "b__c__y.jpg", "b__x.jpg", "w.jpg", "z.JPG"]
    );
    // The chunks carried the webhook: the service reports on them there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while hooks
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no webhook within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The same command again: every chunk checked, none sent.
    let again = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    assert_eq!(
        (again.references.requests, again.references.skipped_chunks),
        (0, chunks)
    );
    assert_eq!(again.references.ingest_ids, Vec::<String>::new());

    // A run that stopped between the answer and the journal: the service's
    // shards name the chunk, so it is not sent again either.
    std::fs::write(&journal, "").unwrap();
    let lost = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    assert_eq!(
        (lost.references.requests, lost.references.skipped_chunks),
        (0, chunks)
    );
    assert_eq!(client.staging().count("bucket", None).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bucket_ingest_is_exact_and_resumable() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let store = open_with_env(&CloudUrl::parse(&s3.url("")).unwrap(), env_of(s3.env())).unwrap();
    fill(&store, "in").await;
    ingest_exact_and_resumable(&s3.url("in"), env_of(s3.env())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_bucket_ingest_is_exact_and_resumable() {
    let Some(gcs) = rf_testservers::gcs() else {
        return;
    };
    for (key, bytes) in tree("in") {
        gcs.put(&key, &bytes).unwrap();
    }
    ingest_exact_and_resumable(&gcs.url("in"), env_of(gcs.env())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_container_ingest_is_exact_and_resumable() {
    let Some(az) = rf_testservers::azure() else {
        return;
    };
    let store = open_with_env(&CloudUrl::parse(&az.url("")).unwrap(), env_of(az.env())).unwrap();
    fill(&store, "in").await;
    ingest_exact_and_resumable(&az.url("in"), env_of(az.env())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_videos_are_ingested_once() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let url = CloudUrl::parse(&s3.url("clips/")).unwrap();
    let store = open_with_env(&url, env_of(s3.env())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["a/c1.mp4", "b/c1.mp4", "c2.MOV", "still.jpg"] {
        let file = dir.path().join("v");
        make_video(&file, 2048);
        let bytes = std::fs::read(&file).unwrap();
        let key = StorePath::from(format!("clips/{name}"));
        store.put(&key, PutPayload::from(bytes)).await.unwrap();
    }
    let emu = start_emulator().await;
    let client = http_client(&emu);
    let ctx = Context::new(client.clone());
    let batch = BatchId::new("clips").unwrap();
    let journal = dir.path().join("state/chunks.jsonl");
    let options = CloudIngestOptions::new(url, batch, MediaKind::Video, journal);
    let first = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    assert_eq!(
        (first.references.references, first.references.requests),
        (3, 1)
    );
    assert_eq!(
        first.listing.other, 1,
        "the image is left out of a video ingest"
    );
    let cancel = CancellationToken::new();
    let count = wait_for_count(&client, "clips", 3, &fast_poll(60), &cancel, |_| {}).await;
    assert_eq!(count.unwrap(), 3);
    // Video chunks announce no shards: the batch's existence is the check.
    let again = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    assert_eq!(
        (again.references.requests, again.references.skipped_chunks),
        (0, 1)
    );
    assert_eq!(client.staging().count("clips", None).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_changed_between_runs_resends_only_the_chunks_around_the_change() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let url = CloudUrl::parse(&s3.url("many/")).unwrap();
    let store = open_with_env(&url, env_of(s3.env())).unwrap();
    let (_, jpeg) = sample_images()
        .into_iter()
        .find(|(r, _)| r.ends_with(".jpg"))
        .unwrap();
    let put = |i: usize| {
        let key = StorePath::from(format!("many/img_{i:04}.jpg"));
        let (store, bytes) = (store.clone(), jpeg.clone());
        async move { store.put(&key, PutPayload::from(bytes)).await.unwrap() }
    };
    for i in (0..400).step_by(2) {
        put(i).await;
    }
    let emu = start_emulator().await;
    let ctx = Context::new(http_client(&emu));
    let dir = tempfile::tempdir().unwrap();
    let batch = BatchId::new("many").unwrap();
    let mut options = CloudIngestOptions::new(url, batch, MediaKind::Image, dir.path().join("j"));
    options.chunk_size = 20;
    let first = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    let chunks = first.references.requests;
    assert!(
        chunks >= 10,
        "{chunks} chunks of at most 20 for 200 objects"
    );
    put(201).await; // in the middle of the listing
    let again = ingest_cloud(&ctx, store.as_ref(), &options).await.unwrap();
    let resent = again.references.requests;
    assert!(resent <= 2, "{resent} chunks sent again of {chunks}");
    assert!(again.references.skipped_chunks + 2 >= chunks, "{again:?}");
}

/// An account SAS for Azurite's account (blob service; list and read).
fn account_sas() -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let (sv, ss, srt, sp, se, spr) = (
        "2021-08-06",
        "b",
        "sco",
        "rl",
        "2099-01-01T00:00:00Z",
        "https,http",
    );
    let account = rf_testservers::AzureServer::ACCOUNT;
    let to_sign = format!("{account}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
    let key = b64.decode(rf_testservers::AzureServer::KEY).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = b64.encode(mac.finalize().into_bytes());
    let sig: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={se}&spr={spr}&sig={sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_container_ingest_with_a_sas_token() {
    let Some(az) = rf_testservers::azure() else {
        return;
    };
    let store = open_with_env(&CloudUrl::parse(&az.url("")).unwrap(), env_of(az.env())).unwrap();
    fill(&store, "sas").await;
    let env = vec![
        (
            "AZURE_STORAGE_ACCOUNT_NAME".to_owned(),
            rf_testservers::AzureServer::ACCOUNT.to_owned(),
        ),
        ("AZURE_STORAGE_SAS_KEY".to_owned(), account_sas()),
        ("AZURE_STORAGE_ENDPOINT".to_owned(), az.endpoint()),
    ];
    ingest_exact_and_resumable(&az.url("sas"), env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_errors_are_typed() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let emu = start_emulator().await;
    let client = http_client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &str, env: Vec<(String, String)>| {
        let url = CloudUrl::parse(url).unwrap();
        let options = CloudIngestOptions::new(
            url.clone(),
            BatchId::new("errors").unwrap(),
            MediaKind::Image,
            dir.path().join("j.jsonl"),
        );
        let ctx = Context::new(client.clone());
        async move {
            let store = open_with_env(&url, env).map_err(Error::from)?;
            ingest_cloud(&ctx, store.as_ref(), &options).await
        }
    };
    let store = open_with_env(&CloudUrl::parse(&s3.url("")).unwrap(), env_of(s3.env())).unwrap();
    fill(&store, "in").await;
    let cloud = |r: Result<_, Error>| match r {
        Err(Error::Cloud(e)) => e,
        other => panic!("expected a bucket error, got {other:?}"),
    };
    let e = cloud(run("s3://no-such-bucket/p/", env_of(s3.env())).await);
    assert!(matches!(e, CloudError::BucketNotFound { .. }), "{e}");
    let e = cloud(run(&s3.url("nothing-here/"), env_of(s3.env())).await);
    assert!(matches!(e, CloudError::EmptyPrefix { .. }), "{e}");
    let e = cloud(run(&s3.url("in/**/*.png"), env_of(s3.env())).await);
    assert!(
        matches!(
            e,
            CloudError::NoMatch {
                listed: 7,
                has_glob: true,
                ..
            }
        ),
        "{e}"
    );
    let bare = vec![("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned())];
    let e = cloud(run(&s3.url("in/"), bare).await);
    assert!(matches!(e, CloudError::NoCredentials { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_access_denied() {
    let Some(az) = rf_testservers::azure() else {
        return;
    };
    let store = open_with_env(&CloudUrl::parse(&az.url("")).unwrap(), env_of(az.env())).unwrap();
    fill(&store, "denied").await;
    let env = env_of(az.env_with_key(rf_testservers::AzureServer::WRONG_KEY));
    let emu = start_emulator().await;
    let ctx = Context::new(http_client(&emu));
    let dir = tempfile::tempdir().unwrap();
    let url = CloudUrl::parse(&az.url("denied/")).unwrap();
    let options = CloudIngestOptions::new(
        url.clone(),
        BatchId::new("denied").unwrap(),
        MediaKind::Image,
        dir.path().join("j.jsonl"),
    );
    let store = open_with_env(&url, env).unwrap();
    let result = ingest_cloud(&ctx, store.as_ref(), &options).await;
    match result {
        Err(Error::Cloud(CloudError::AccessDenied { url, .. })) => {
            assert_eq!(url, az.url("denied/"));
        }
        other => panic!("expected access denied, got {other:?}"),
    }
}
