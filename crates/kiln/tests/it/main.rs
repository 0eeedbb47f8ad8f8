//! CLI integration tests: the real `kiln` binary on the examples and on bad input.
//! One test binary (modules below) keeps link time down.

#![allow(clippy::unwrap_used)]

mod common;
mod data;
mod experiments;
mod pipeline_features;
mod plots;
mod predict;
mod registry;
mod registry_serve;
mod remote;
mod s3;
mod serve;
mod server;
mod spam_pipeline;
mod train;
