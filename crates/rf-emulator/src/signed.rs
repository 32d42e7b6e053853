//! Signed upload and download URLs, as a cloud store would hand out.
//!
//! A URL is `{base}/_signed/{token}`, where the token is
//! `hex(json claims) "." hex(HMAC-SHA256(key, hex claims))`. The claims bind
//! the operation, workspace, batch and object, carry an expiry and list the
//! extension headers the client must send. Anything off (tampering, expiry,
//! missing or changed header, wrong method) is refused with 403 and a reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::model::{BlobRef, Content};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Path prefix of signed URLs on the emulator's origin.
pub(crate) const SIGNED_PREFIX: &str = "/_signed/";

/// Name of the size-range header handed out with upload URLs.
pub(crate) const LENGTH_RANGE_HEADER: &str = "X-Goog-Content-Length-Range";

/// What a signed URL allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub(crate) enum Grant {
    /// PUT one `.tar` shard into a sharded batch.
    UploadShard {
        shard_id: String,
        display_name: Option<String>,
    },
    /// PUT one video into a simple batch.
    UploadVideo {
        file_name: String,
        display_name: Option<String>,
    },
    /// GET one stored file.
    Download {
        file_name: String,
        data: BlobRef,
        content: Content,
    },
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) ws: String,
    pub(crate) batch: String,
    pub(crate) grant: Grant,
    /// Unix seconds after which the URL is refused.
    pub(crate) exp: i64,
    /// Headers (name -> value) the request must carry unchanged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Largest accepted body for uploads.
    #[serde(default)]
    pub(crate) max_bytes: Option<u64>,
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignedUrlError {
    #[error("signed url is malformed: {0}")]
    Malformed(&'static str),
    #[error("signed url signature does not match: the url was altered or signed by another server")]
    BadSignature,
    #[error("signed url expired at {0}")]
    Expired(String),
    #[error("signed url requires header {0} with the value handed out in extensionHeaders")]
    MissingHeader(String),
    #[error("signed url allows {allowed}, not {used}")]
    WrongMethod { allowed: &'static str, used: String },
}

impl Claims {
    /// The HTTP method this grant allows.
    pub(crate) fn method(&self) -> &'static str {
        match self.grant {
            Grant::UploadShard { .. } | Grant::UploadVideo { .. } => "PUT",
            Grant::Download { .. } => "GET",
        }
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; only fixed-size-key MACs can fail here.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("hmac accepts keys of any length")
}

/// Makes the token for `claims`.
pub(crate) fn sign(key: &[u8], claims: &Claims) -> String {
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let payload = hex::encode(json);
    let mut m = mac(key);
    m.update(payload.as_bytes());
    let sig = hex::encode(m.finalize().into_bytes());
    format!("{payload}.{sig}")
}

/// Checks a token's signature and expiry, returning its claims.
pub(crate) fn verify(
    key: &[u8],
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claims, SignedUrlError> {
    let (payload, sig) = token
        .split_once('.')
        .ok_or(SignedUrlError::Malformed("no signature part"))?;
    let sig = hex::decode(sig).map_err(|_| SignedUrlError::Malformed("signature is not hex"))?;
    let mut m = mac(key);
    m.update(payload.as_bytes());
    m.verify_slice(&sig)
        .map_err(|_| SignedUrlError::BadSignature)?;
    let json = hex::decode(payload).map_err(|_| SignedUrlError::Malformed("payload is not hex"))?;
    let claims: Claims = serde_json::from_slice(&json)
        .map_err(|_| SignedUrlError::Malformed("payload is not valid"))?;
    if now.timestamp() > claims.exp {
        let at = DateTime::<Utc>::from_timestamp(claims.exp, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| claims.exp.to_string());
        return Err(SignedUrlError::Expired(at));
    }
    Ok(claims)
}

/// Checks the method and the extension headers of a request against claims.
pub(crate) fn check_request(
    claims: &Claims,
    method: &str,
    headers: &HeaderMap,
) -> Result<(), SignedUrlError> {
    let allowed = claims.method();
    if !method.eq_ignore_ascii_case(allowed) {
        return Err(SignedUrlError::WrongMethod {
            allowed,
            used: method.to_string(),
        });
    }
    for (name, value) in &claims.headers {
        let got = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if got.map(str::trim) != Some(value.as_str()) {
            return Err(SignedUrlError::MissingHeader(name.clone()));
        }
    }
    Ok(())
}

/// Extension headers for an upload of at most `max_bytes` (header names
/// match case-insensitively).
pub(crate) fn upload_headers(max_bytes: u64) -> BTreeMap<String, String> {
    BTreeMap::from([(LENGTH_RANGE_HEADER.to_string(), format!("0,{max_bytes}"))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        let headers = upload_headers(100);
        Claims {
            ws: "ws".into(),
            batch: "b".into(),
            grant: Grant::UploadShard {
                shard_id: "s1".into(),
                display_name: None,
            },
            exp,
            headers,
            max_bytes: Some(100),
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let now = Utc::now();
        let c = claims(now.timestamp() + 60);
        let t = sign(b"k", &c);
        assert_eq!(verify(b"k", &t, now).unwrap(), c);
        assert_eq!(verify(b"other", &t, now), Err(SignedUrlError::BadSignature));
        // change one payload character
        let mut bytes = t.into_bytes();
        bytes[3] = if bytes[3] == b'0' { b'1' } else { b'0' };
        let t2 = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(b"k", &t2, now), Err(SignedUrlError::BadSignature));
        assert!(matches!(
            verify(b"k", "zz", now),
            Err(SignedUrlError::Malformed(_))
        ));
    }

    #[test]
    fn expiry_and_headers() {
        let now = Utc::now();
        let t = sign(b"k", &claims(now.timestamp() - 1));
        assert!(matches!(
            verify(b"k", &t, now),
            Err(SignedUrlError::Expired(_))
        ));
        let c = claims(now.timestamp() + 60);
        let mut h = HeaderMap::new();
        assert!(matches!(
            check_request(&c, "PUT", &h),
            Err(SignedUrlError::MissingHeader(_))
        ));
        h.insert("x-goog-content-length-range", "0,100".parse().unwrap());
        assert_eq!(check_request(&c, "PUT", &h), Ok(()));
        assert!(matches!(
            check_request(&c, "GET", &h),
            Err(SignedUrlError::WrongMethod { .. })
        ));
    }
}
