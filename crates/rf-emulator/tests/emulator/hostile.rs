//! Garbage requests (a seeded generator of odd paths, methods and bodies)
//! never get a 5xx.

use super::*;

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    let env = start().await;
    env.upload_image("h", "a.png", png(1, 1, 1), "file").await;
    let mut rng = Lcg(42);
    let endpoints = [
        ("POST", "batches/h/bulk-upload/image-references"),
        ("POST", "batches/h2/bulk-upload/video-references"),
        ("POST", "batches/h/upload/image"),
    ];
    for i in 0..60 {
        let (method, path) = endpoints[i % endpoints.len()];
        let n = (rng.next() % 300) as usize;
        let body = rng.bytes(n);
        let r = env
            .http
            .request(method.parse().unwrap(), env.ds(path))
            .query(&[("api_key", "test-key"), ("fileName", "x.png")])
            .header(
                "content-type",
                if i % 2 == 0 {
                    "application/json"
                } else {
                    "multipart/form-data; boundary=zz"
                },
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error() || r.status().is_success(),
            "{path}: {}",
            r.status()
        );
        let v: Value = r.json().await.unwrap();
        assert!(v.is_object());
    }
    for i in 0..40 {
        let n = (rng.next() % 200) as usize;
        let body = rng.bytes(n);
        let body = if i % 3 == 0 {
            serde_json::to_vec(&json!({"type": "simple-image-processing-v1", "jobInput": String::from_utf8_lossy(&body)})).unwrap()
        } else {
            body
        };
        let r = env
            .http
            .post(env.bp(&format!("jobs/fz-{i}")))
            .query(&[("api_key", "test-key")])
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = env
            .http
            .post(env.bp("jobs/fz-x/restart"))
            .query(&[("api_key", "test-key")])
            .body(rng.bytes(20))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error());
    }
    let odd = [
        "batches/%2e%2e/count",
        "batches/h/list?pageSize=99999999999999999999",
        "batches/h/list?nextPageToken=%00%ff",
        "batches/h/count?partName=%E2%82%AC",
        "batches/h/nothing",
        "batches/",
    ];
    for p in odd {
        let url = format!(
            "{}{}{}api_key=test-key",
            env.ds(p),
            "",
            if p.contains('?') { "&" } else { "?" }
        );
        let r = env.http.get(url).send().await.unwrap();
        assert!(
            r.status().is_client_error() || r.status().is_success(),
            "{p}: {}",
            r.status()
        );
        assert!(r.json::<Value>().await.unwrap().is_object(), "{p}");
    }
    env.emu.shutdown().await;
}
