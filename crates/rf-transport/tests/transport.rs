//! Integration tests of rf-transport through its public API only: the
//! reqwest transport against wiremock and raw loopback servers, streamed
//! uploads and downloads with bounded bytes in flight, retries with a
//! virtual clock, secret redaction (a canary key in errors, Debug and
//! logs), and a transport implemented outside the crate.

mod transport {
    mod support;

    mod custom;
    mod fidelity;
    mod idle;
    mod models;
    mod proxy;
    mod redact_props;
    mod redaction;
    mod retry;
    mod streaming;
    mod tls;
    mod wire;
}
