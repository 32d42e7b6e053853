//! Isolation: a key sees only its workspace (another workspace's batches,
//! jobs, logs and export outputs answer 403 or 404, never their data), and
//! a signed URL cannot be reused for another batch, another file, another
//! shard, or after it expired.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use rf_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::outcome::{
    DEADLINE, Env, Outcome, image_job, png, shard_named, shard_of, start_with, tar_of,
};

/// A route: method, URL for a workspace, body, and the answer expected
/// when the other key asks on its own workspace's path.
type Route<'a> = (
    &'static str,
    Box<dyn Fn(&str) -> String + 'a>,
    Option<Value>,
    StatusCode,
);

/// Strings only test-ws's data contains.
const PRIVATE: &[&str] = &[
    "private-",
    "_signed/",
    "image-properties",
    "staging-batch-input",
];

async fn wait_job_done(env: &Env, job: &str) {
    env.wait_stats("the job done", |s| {
        s.workspaces["test-ws"]
            .jobs
            .get(job)
            .is_some_and(|j| j.phase == "succeeded")
    })
    .await;
}

#[tokio::test]
async fn a_key_sees_only_its_workspace() {
    let env = start_with(EmulatorConfig::for_tests().with_key("other-key", "other-ws")).await;
    let (url, headers) = env.shard_url("iso-batch").await;
    assert_eq!(
        env.put(&url, &headers, shard_named("private", 3))
            .await
            .status(),
        Some(StatusCode::OK)
    );
    env.wait_stats("indexed", |s| {
        s.workspaces["test-ws"].batches["iso-batch"].files == 3
    })
    .await;
    let o = env
        .post(
            &env.bp("jobs/iso-job"),
            Some(image_job("iso-batch", "image-properties")),
        )
        .await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    wait_job_done(&env, "iso-job").await;
    let before = env.stats().await;
    let output = before.workspaces["test-ws"]
        .batches
        .iter()
        .find(|(_, b)| b.output_of_job.as_deref() == Some("iso-job"))
        .map(|(id, _)| id.clone())
        .expect("an output batch");
    let stages = env.get_ok(&env.bp("jobs/iso-job/stages"), &[]).await;
    let stage = stages["stages"][0]["processingStageId"]
        .as_str()
        .unwrap()
        .to_string();

    let base = env.base();
    let ds = |ws: &str, p: &str| format!("{base}data-staging/v1/external/{ws}/batches{p}");
    let bp = |ws: &str, p: &str| format!("{base}batch-processing/v1/external/{ws}/jobs{p}");
    // (method, url builder per workspace, answer expected on other-ws's own path)
    let job_body = image_job("iso-batch", "image-properties");
    let routes: Vec<Route> = vec![
        (
            "GET",
            Box::new(|ws| ds(ws, "/iso-batch")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, "/iso-batch/count")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, "/iso-batch/list")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, "/iso-batch/parts")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, "/iso-batch/shards")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, &format!("/{output}/list"))),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| ds(ws, &format!("/{output}/count"))),
            None,
            StatusCode::NOT_FOUND,
        ),
        ("GET", Box::new(|ws| ds(ws, "")), None, StatusCode::OK),
        ("GET", Box::new(|ws| bp(ws, "")), None, StatusCode::OK),
        (
            "GET",
            Box::new(|ws| bp(ws, "/iso-job")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| bp(ws, "/iso-job/stages")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| bp(ws, &format!("/iso-job/stages/{stage}/tasks"))),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            Box::new(|ws| bp(ws, "/iso-job/logs")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            Box::new(|ws| bp(ws, "/iso-job/abort")),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            Box::new(|ws| bp(ws, "/iso-job/restart")),
            None,
            StatusCode::NOT_FOUND,
        ),
        // a job over the other workspace's batch: that batch does not exist here
        (
            "POST",
            Box::new(|ws| bp(ws, "/iso-job")),
            Some(job_body.clone()),
            StatusCode::NOT_FOUND,
        ),
    ];
    let auths: [(&str, Option<&str>); 2] =
        [("query", Some("other-key")), ("bearer", Some("other-key"))];
    for (method, url_of, body, own_status) in &routes {
        for (how, key) in auths {
            for (ws, want) in [
                ("test-ws", StatusCode::FORBIDDEN),
                ("other-ws", *own_status),
            ] {
                let url = url_of(ws);
                let mut req = env.http.request(method.parse().unwrap(), &url);
                req = match how {
                    "query" => req.query(&[("api_key", key.unwrap())]),
                    _ => req.bearer_auth(key.unwrap()),
                };
                if let Some(b) = body {
                    req = req.json(b);
                }
                let o = env.send(req).await;
                let Outcome::Answer(status, _, bytes) = &o else {
                    panic!("{o:?}")
                };
                assert_eq!(*status, want, "{method} {url} ({how}): {o:?}");
                let text = String::from_utf8_lossy(bytes);
                for p in PRIVATE {
                    assert!(!text.contains(p), "{method} {url} leaked {p:?}: {text}");
                }
            }
        }
        // no key or a wrong key: 401
        for key in [None, Some("wrong-key")] {
            let mut req = env.http.request(method.parse().unwrap(), url_of("test-ws"));
            if let Some(k) = key {
                req = req.query(&[("api_key", k)]);
            }
            let o = env.send(req).await;
            assert_eq!(o.status(), Some(StatusCode::UNAUTHORIZED), "{o:?}");
        }
    }
    // Writes on other-ws's own path land in other-ws only.
    let o = env
        .send(
            env.http
                .post(ds("other-ws", "/iso-batch/bulk-upload/image-files"))
                .query(&[("api_key", "other-key")]),
        )
        .await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    // test-ws is untouched: same files, the job neither aborted nor restarted.
    let after = env.stats().await;
    assert_eq!(after.workspaces["test-ws"], before.workspaces["test-ws"]);
    assert!(after.workspaces["other-ws"].jobs.is_empty());
    assert_eq!(after.workspaces["other-ws"].batches["iso-batch"].files, 0);
    env.0.emu.shutdown().await;
}

/// The hex-encoded claims of a signed URL, decoded.
fn claims_of(url: &str) -> (String, Value, String) {
    let token = url.rsplit("/_signed/").next().unwrap();
    let (payload, sig) = token.split_once('.').unwrap();
    let json: Value = serde_json::from_slice(&hex_decode(payload)).unwrap();
    let prefix = url[..url.len() - token.len()].to_string();
    (prefix, json, sig.to_string())
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `url` with its claims changed by `f`, keeping the old signature.
fn forged(url: &str, f: impl FnOnce(&mut Value)) -> String {
    let (prefix, mut claims, sig) = claims_of(url);
    f(&mut claims);
    format!(
        "{prefix}{}.{sig}",
        hex_encode(claims.to_string().as_bytes())
    )
}

/// The payload of `a` with the signature of `b`.
fn spliced(a: &str, b: &str) -> String {
    let (prefix, _, _) = claims_of(a);
    let ta = a.rsplit("/_signed/").next().unwrap();
    let tb = b.rsplit("/_signed/").next().unwrap();
    format!(
        "{prefix}{}.{}",
        ta.split_once('.').unwrap().0,
        tb.split_once('.').unwrap().1
    )
}

async fn assert_refused(env: &Env, o: Outcome, why: &str) {
    assert_eq!(o.status(), Some(StatusCode::FORBIDDEN), "{why}: {o:?}");
    let e = o.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        e.contains("signature") || e.contains("malformed"),
        "{why}: {e}"
    );
    let _ = env;
}

#[tokio::test]
async fn signed_urls_cannot_be_reused_for_another_batch_file_or_shard() {
    let env = start_with(EmulatorConfig::for_tests()).await;
    let (url_a, headers) = env.shard_url("sa").await;
    let (url_b, _) = env.shard_url("sb").await;

    // Another batch: the claims name the batch, and they are signed.
    let to_b = forged(&url_a, |c| c["batch"] = json!("sb"));
    assert_refused(
        &env,
        env.put(&to_b, &headers, shard_of(2)).await,
        "batch swapped",
    )
    .await;
    let other_shard = forged(&url_a, |c| c["grant"]["shard_id"] = json!("my-own-shard"));
    assert_refused(
        &env,
        env.put(&other_shard, &headers, shard_of(2)).await,
        "shard swapped",
    )
    .await;
    let bigger = forged(&url_a, |c| c["max_bytes"] = json!(u64::MAX));
    assert_refused(
        &env,
        env.put(&bigger, &headers, shard_of(2)).await,
        "limit raised",
    )
    .await;
    let later = forged(&url_a, |c| c["exp"] = json!(i64::MAX / 2));
    assert_refused(
        &env,
        env.put(&later, &headers, shard_of(2)).await,
        "expiry moved",
    )
    .await;
    let mixed = spliced(&url_a, &url_b);
    assert_refused(
        &env,
        env.put(&mixed, &headers, shard_of(2)).await,
        "signature of b",
    )
    .await;
    let stats = env.stats().await;
    assert_eq!(stats.shard_uploads, 0, "nothing refused was stored");
    assert_eq!(stats.workspaces["test-ws"].batches["sa"].shards, 0);
    assert_eq!(stats.workspaces["test-ws"].batches["sb"].shards, 0);

    // Re-using an upload URL replaces its one shard; it never adds another.
    assert_eq!(
        env.put(&url_a, &headers, shard_of(3)).await.status(),
        Some(StatusCode::OK)
    );
    env.wait_stats("3 files", |s| {
        s.workspaces["test-ws"].batches["sa"].files == 3
    })
    .await;
    let other = tar_of(&[("other-0.png", png(3, 3, 9)), ("other-1.png", png(3, 3, 8))]);
    assert_eq!(
        env.put(&url_a, &headers, other).await.status(),
        Some(StatusCode::OK)
    );
    let stats = env
        .wait_stats("replaced", |s| {
            let b = &s.workspaces["test-ws"].batches["sa"];
            b.files == 2 && b.shards_pending == 0
        })
        .await;
    assert_eq!(stats.workspaces["test-ws"].batches["sa"].shards, 1);
    assert_eq!(stats.workspaces["test-ws"].batches["sb"].files, 0);

    // Download URLs: one file each; not another file, range, or batch.
    let list = env.get_ok(&env.ds("batches/sa/list"), &[]).await;
    let urls: BTreeMap<String, String> = list["filesMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fileName"].as_str().unwrap().to_string(),
                f["downloadURL"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let d0 = &urls["other-0.png"];
    let d1 = &urls["other-1.png"];
    let o = env.send(env.http.get(d0)).await;
    assert_eq!(o, Outcome::Answer(StatusCode::OK, None, png(3, 3, 9)));
    let swapped = spliced(d0, d1);
    assert_refused(
        &env,
        env.send(env.http.get(&swapped)).await,
        "file signature swapped",
    )
    .await;
    let wider = forged(d0, |c| c["grant"]["data"]["len"] = json!(1_000_000));
    assert_refused(&env, env.send(env.http.get(&wider)).await, "range widened").await;
    let elsewhere = forged(d0, |c| c["grant"]["data"]["offset"] = json!(0));
    let o = env.send(env.http.get(&elsewhere)).await;
    assert_eq!(
        o.status(),
        Some(StatusCode::FORBIDDEN),
        "offset moved: {o:?}"
    );
    let renamed = forged(d0, |c| c["grant"]["file_name"] = json!("other-1.png"));
    assert_refused(&env, env.send(env.http.get(&renamed)).await, "file renamed").await;
    let moved = forged(d0, |c| c["batch"] = json!("sb"));
    assert_refused(&env, env.send(env.http.get(&moved)).await, "batch changed").await;
    // An upload URL does not download, a download URL does not upload.
    let o = env.send(env.http.get(&url_a)).await;
    assert_eq!(o.status(), Some(StatusCode::FORBIDDEN), "{o:?}");
    let o = env.put(d0, &headers, shard_of(1)).await;
    assert_eq!(o.status(), Some(StatusCode::FORBIDDEN), "{o:?}");
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn signed_urls_expire_for_uploads_and_downloads() {
    let mut config = EmulatorConfig::for_tests();
    config.signed_url_ttl = Duration::ZERO;
    let env = start_with(config).await;
    // A file uploaded by multipart (no signed URL needed), to get a download URL.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png(2, 2, 5)).file_name("kept.png"),
    );
    let o = env
        .send(
            env.http
                .post(env.ds("batches/exp/upload/image"))
                .query(&[("api_key", "test-key"), ("fileName", "kept.png")])
                .multipart(form),
        )
        .await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    let list = env.get_ok(&env.ds("batches/exp/list"), &[]).await;
    let download = list["filesMetadata"][0]["downloadURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (upload, headers) = env.shard_url("exp-shards").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let (mut up_refused, mut down_refused) = (false, false);
    while !(up_refused && down_refused) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "signed urls never expired"
        );
        if !up_refused {
            let o = env.put(&upload, &headers, shard_of(1)).await;
            if o.status() == Some(StatusCode::FORBIDDEN) {
                assert!(
                    o.json()["error"].as_str().unwrap().contains("expired"),
                    "{o:?}"
                );
                up_refused = true;
            }
        }
        if !down_refused {
            let o = env.send(env.http.get(&download)).await;
            if o.status() == Some(StatusCode::FORBIDDEN) {
                assert!(
                    o.json()["error"].as_str().unwrap().contains("expired"),
                    "{o:?}"
                );
                down_refused = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The refused upload stored nothing (earlier PUTs within the second may have).
    let stats = env.stats().await;
    let b = &stats.workspaces["test-ws"].batches["exp-shards"];
    assert_eq!(b.shards, stats.shard_uploads.min(1), "{stats:?}");
    env.0.emu.shutdown().await;
}
