//! Property tests of the ID validators and generators.

use proptest::prelude::*;
use rf_types::{BatchId, IdError, JobId};

const RULE: &str = "characters of a-z, 0-9, '_' and '-'";

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

/// A string of allowed characters with one disallowed character inserted.
fn with_bad_char(max_len: usize) -> impl Strategy<Value = String> {
    let half = max_len / 2;
    (
        proptest::collection::vec(proptest::sample::select(allowed_chars()), 0..half),
        any::<char>().prop_filter("must be outside the id charset", |c| !allowed(*c)),
        proptest::collection::vec(proptest::sample::select(allowed_chars()), 0..half),
    )
        .prop_map(|(pre, bad, post)| {
            pre.into_iter()
                .chain(std::iter::once(bad))
                .chain(post)
                .collect()
        })
}

fn allowed_chars() -> Vec<char> {
    ('a'..='z').chain('0'..='9').chain(['_', '-']).collect()
}

fn assert_message(err: &IdError, kind: &str, value: &str, max: usize) {
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("invalid {kind} {value:?}: ")),
        "message must name the kind and the value: {message}"
    );
    assert!(
        message.ends_with(&format!("use 1-{max} {RULE}")),
        "message must state the rule: {message}"
    );
    assert_eq!(err.value(), value);
    assert_eq!(err.kind(), kind);
    assert_eq!(err.max_len(), max);
}

proptest! {
    #[test]
    fn valid_batch_ids_accepted(s in "[a-z0-9_-]{1,64}") {
        let id = BatchId::new(s.clone()).expect("valid batch id");
        prop_assert_eq!(id.as_str(), s.as_str());
        prop_assert_eq!(id.to_string(), s.clone());
        prop_assert_eq!(s.parse::<BatchId>().expect("parses"), id.clone());
        let json = serde_json::to_string(&id).expect("serialize");
        prop_assert_eq!(serde_json::from_str::<BatchId>(&json).expect("deserialize"), id);
    }

    #[test]
    fn valid_job_ids_accepted(s in "[a-z0-9_-]{1,20}") {
        let id = JobId::new(s.clone()).expect("valid job id");
        prop_assert_eq!(id.as_str(), s.as_str());
        prop_assert_eq!(s.parse::<JobId>().expect("parses"), id);
    }

    #[test]
    fn batch_ids_with_bad_char_rejected(s in with_bad_char(64)) {
        let err = BatchId::new(s.clone()).expect_err("bad char must be rejected");
        assert_message(&err, "batch id", &s, 64);
        let json = serde_json::to_string(&s).expect("serialize string");
        let de = serde_json::from_str::<BatchId>(&json).expect_err("deserialize must validate");
        prop_assert!(de.to_string().contains(&err.to_string()), "{}", de);
    }

    #[test]
    fn job_ids_with_bad_char_rejected(s in with_bad_char(20)) {
        let err = JobId::new(s.clone()).expect_err("bad char must be rejected");
        assert_message(&err, "job id", &s, 20);
        prop_assert!(s.parse::<JobId>().is_err());
    }

    #[test]
    fn too_long_ids_rejected(s in "[a-z0-9_-]{65,130}") {
        let err = BatchId::new(s.clone()).expect_err("65+ characters");
        assert_message(&err, "batch id", &s, 64);
        let job_err = JobId::new(&s[..21.max(s.len() / 3)]).expect_err("21+ characters");
        prop_assert_eq!(job_err.max_len(), 20);
    }

    #[test]
    fn job_ids_over_20_rejected(s in "[a-z0-9_-]{21,64}") {
        let err = JobId::new(s.clone()).expect_err("21+ characters");
        assert_message(&err, "job id", &s, 20);
        prop_assert!(BatchId::new(s).is_ok(), "the same value is a valid batch id");
    }
}

#[test]
fn empty_ids_rejected() {
    assert_message(&BatchId::new("").expect_err("empty"), "batch id", "", 64);
    assert_message(&JobId::new("").expect_err("empty"), "job id", "", 20);
}

#[test]
fn agreed_message_text() {
    let err = BatchId::new("Foo").expect_err("upper case");
    assert_eq!(
        err.to_string(),
        r#"invalid batch id "Foo": use 1-64 characters of a-z, 0-9, '_' and '-'"#
    );
}

#[test]
fn generated_ids_always_valid() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let batch = BatchId::generate();
        let rest = batch
            .as_str()
            .strip_prefix("batch-")
            .expect("batch- prefix");
        assert_eq!(rest.len(), 12);
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(BatchId::new(batch.as_str()), Ok(batch.clone()));

        let job = JobId::generate();
        let rest = job.as_str().strip_prefix("job-").expect("job- prefix");
        assert_eq!(rest.len(), 12);
        assert!(
            rest.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(JobId::new(job.as_str()), Ok(job.clone()));
        seen.insert(job);
    }
    // 36^12 possibilities: 2000 draws colliding means the generator is broken.
    assert_eq!(seen.len(), 2000);
}
