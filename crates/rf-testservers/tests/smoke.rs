//! Each server starts, has its bucket, stores an object and serves it
//! back, and is gone once its handle is dropped.

fn refused(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    agent.get(url).call().is_err()
}

#[test]
fn s3_server_stores_and_serves_an_object() {
    let Some(s3) = rf_testservers::s3() else {
        return;
    };
    let url = format!("{}/{}/dir/a.txt", s3.endpoint(), rf_testservers::BUCKET);
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    agent.put(&url).send("hello s3").unwrap();
    assert_eq!(s3.get("dir/a.txt").unwrap(), (200, b"hello s3".to_vec()));
    assert_eq!(s3.get("dir/missing.txt").unwrap().0, 404);
    let env = s3.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL", s3.endpoint())));
    assert_eq!(s3.url("p/"), "s3://rf-test/p/");
    let endpoint = s3.endpoint();
    drop(s3);
    assert!(refused(&endpoint), "moto still answers after drop");
}

#[test]
fn gcs_server_stores_lists_and_serves_an_object() {
    let Some(gcs) = rf_testservers::gcs() else {
        return;
    };
    gcs.put("dir/b c.txt", b"hello gcs").unwrap();
    assert_eq!(
        gcs.get("dir/b%20c.txt").unwrap(),
        (200, b"hello gcs".to_vec())
    );
    // The XML listing object_store's GCS client reads.
    let listing = format!(
        "{}/{}?list-type=2&prefix=dir/",
        gcs.endpoint(),
        rf_testservers::BUCKET
    );
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    let body = agent
        .get(&listing)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(body.contains("<Key>dir/b c.txt</Key>"), "{body}");
    let account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gcs.service_account_file()).unwrap()).unwrap();
    assert_eq!(account["gcs_base_url"], gcs.endpoint());
    assert!(
        account["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let endpoint = gcs.endpoint();
    drop(gcs);
    assert!(
        refused(&format!("{endpoint}/storage/v1/b")),
        "fake-gcs-server still answers after drop"
    );
}

#[test]
fn azure_server_has_its_container() {
    let Some(azure) = rf_testservers::azure() else {
        return;
    };
    assert_eq!(azure.get("missing.txt").unwrap().0, 404);
    // A second container: the signed setup request is accepted.
    azure.create_container("second").unwrap();
    let env = azure.env();
    assert!(env.contains(&("AZURE_STORAGE_ENDPOINT", azure.endpoint())));
    let endpoint = azure.endpoint();
    drop(azure);
    assert!(
        refused(&format!("{endpoint}?comp=list")),
        "Azurite still answers after drop"
    );
}
