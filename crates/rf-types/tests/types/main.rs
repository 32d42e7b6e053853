//! Integration tests of `rf-types`: golden JSON fixtures, ID property tests,
//! wire-name drift, serde rules, OpenAPI coverage and the job builder.

mod builder;
mod full;
mod golden;
mod ids;
mod schema_coverage;
mod serde_rules;
mod support;
mod wire_names;
