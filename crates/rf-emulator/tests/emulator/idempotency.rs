//! Job-start idempotency on the server side: a repeated start with the same
//! definition is answered as success and starts nothing; a different
//! definition under the same ID is a clear 409; concurrent starts create
//! exactly one job. (The retry after a lost answer, through chaos
//! `drop-response`, is in `chaos.rs`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::outcome::{Env, image_job, shard_of, start};

async fn batch(env: &Env, id: &str) {
    let (url, headers) = env.shard_url(id).await;
    assert_eq!(
        env.put(&url, &headers, shard_of(2)).await.status(),
        Some(StatusCode::OK)
    );
    env.wait_stats("indexed", |s| {
        s.workspaces["test-ws"].batches[id].files == 2
    })
    .await;
}

#[tokio::test]
async fn a_repeated_start_is_success_and_a_different_one_is_409() {
    let env = start().await;
    batch(&env, "idem").await;
    let def = image_job("idem", "image-properties");
    let o = env.post(&env.bp("jobs/idem-job"), Some(def.clone())).await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    // The same definition, keys in another order and other whitespace.
    let reordered: Value = serde_json::from_str(&format!(
        "{{ \"processingSpecification\" : {} , \"jobInput\": {}, \"computeConfiguration\": {}, \"type\": \"simple-image-processing-v1\" }}",
        def["processingSpecification"], def["jobInput"], def["computeConfiguration"]
    ))
    .unwrap();
    for body in [def.clone(), reordered] {
        let o = env.post(&env.bp("jobs/idem-job"), Some(body)).await;
        assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
        assert_eq!(o.json()["status"], json!("ok"));
    }
    let stats = env.stats().await;
    assert_eq!((stats.jobs_created, stats.job_starts_repeated), (1, 2));

    let other = image_job("idem", "mock-detector");
    let o = env.post(&env.bp("jobs/idem-job"), Some(other)).await;
    assert_eq!(o.status(), Some(StatusCode::CONFLICT), "{o:?}");
    let e = o.json()["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("different definition") && e.contains("new job id"),
        "{e}"
    );
    let job = env.get_ok(&env.bp("jobs/idem-job"), &[]).await;
    assert_eq!(
        job["job"]["jobDefinition"]["processingSpecification"]["workflowId"],
        json!("image-properties"),
        "the first definition stays"
    );

    // After the job finished, the same start still starts nothing.
    env.wait_stats("done", |s| {
        s.workspaces["test-ws"].jobs["idem-job"].phase == "succeeded"
    })
    .await;
    let o = env.post(&env.bp("jobs/idem-job"), Some(def)).await;
    assert_eq!(o.status(), Some(StatusCode::OK), "{o:?}");
    let stats = env.stats().await;
    assert_eq!(stats.jobs_created, 1);
    let j = &stats.workspaces["test-ws"].jobs["idem-job"];
    assert_eq!((j.phase.as_str(), j.generation), ("succeeded", 0));
    env.0.emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_starts_create_exactly_one_job() {
    let env = start().await;
    batch(&env, "race").await;
    let a = image_job("race", "image-properties");
    let b = image_job("race", "mock-detector");
    // Same definition from 8 clients at once: one job, 8 successes.
    let url = env.bp("jobs/race-same");
    let same = futures::future::join_all((0..8).map(|_| env.post(&url, Some(a.clone())))).await;
    assert!(
        same.iter().all(|o| o.status() == Some(StatusCode::OK)),
        "{same:?}"
    );
    let stats = env.stats().await;
    assert_eq!((stats.jobs_created, stats.job_starts_repeated), (1, 7));

    // Two definitions racing: one wins, every loser gets 409.
    let url = env.bp("jobs/race-mixed");
    let mixed = futures::future::join_all((0..8).map(|i| {
        let body = if i % 2 == 0 { a.clone() } else { b.clone() };
        env.post(&url, Some(body))
    }))
    .await;
    let job = env.get_ok(&env.bp("jobs/race-mixed"), &[]).await;
    let winner = job["job"]["jobDefinition"]["processingSpecification"]["workflowId"].clone();
    for (i, o) in mixed.iter().enumerate() {
        let def = if i % 2 == 0 { &a } else { &b };
        let want = if def["processingSpecification"]["workflowId"] == winner {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(o.status(), Some(want), "start {i}: {o:?}");
    }
    assert_eq!(env.stats().await.jobs_created, 2);
    env.0.emu.shutdown().await;
}
