//! Pagination of every listing: page sizes and next-page tokens.

use super::*;

#[tokio::test]
async fn page_size_is_honoured_and_tokens_are_never_empty() {
    let env = start().await;
    for i in 0..5u8 {
        env.upload_image("pg", &format!("{i}.png"), png(1, 1, i), "file")
            .await;
        env.upload_image(&format!("pg{i}"), "x.png", png(1, 1, i), "file")
            .await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("pageSize", "2")];
        if let Some(t) = &token {
            q.push(("nextPageToken", t.as_str()));
        }
        let (s, b) = env.get(&env.ds("batches/pg/list"), &q).await;
        assert_eq!(s, StatusCode::OK);
        let files = b["filesMetadata"].as_array().unwrap();
        assert!(files.len() <= 2);
        names.extend(
            files
                .iter()
                .map(|f| f["fileName"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match b.get("nextPageToken") {
            Some(Value::String(t)) => {
                assert!(!t.is_empty());
                token = Some(t.clone());
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, vec!["0.png", "1.png", "2.png", "3.png", "4.png"]);
    let (_, b) = env.get(&env.ds("batches"), &[("pageSize", "4")]).await;
    assert_eq!(b["batches"].as_array().unwrap().len(), 4);
    assert!(b["nextPageToken"].is_string());
    let (s, _) = env
        .get(&env.ds("batches"), &[("nextPageToken", "bogus")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env.get(&env.ds("batches"), &[("pageSize", "-3")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // jobs list always carries the key
    let (_, jobs) = env.get(&env.bp("jobs"), &[("pageSize", "10")]).await;
    assert_eq!(jobs, json!({"jobs": [], "nextPageToken": null}));
    env.emu.shutdown().await;
}

#[tokio::test]
async fn file_listings_are_sorted_by_name_across_pages() {
    let env = start().await;
    let uploaded = [
        "m.png", "c.png", "z.png", "a.png", "k.png", "b.png", "y.png",
    ];
    for (i, name) in (0u8..).zip(uploaded) {
        env.upload_image("sorted", name, png(1, 1, i), "file").await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("pageSize", "3")];
        if let Some(t) = &token {
            q.push(("nextPageToken", t.as_str()));
        }
        let (s, b) = env.get(&env.ds("batches/sorted/list"), &q).await;
        assert_eq!(s, StatusCode::OK);
        names.extend(
            b["filesMetadata"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["fileName"].as_str().unwrap().to_string()),
        );
        match b.get("nextPageToken") {
            Some(Value::String(t)) => token = Some(t.clone()),
            _ => break,
        }
    }
    let mut expected: Vec<String> = uploaded.iter().map(|n| (*n).to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    env.emu.shutdown().await;
}
