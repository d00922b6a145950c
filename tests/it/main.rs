//! One integration test binary (ripgrep's habit): every test talks to a real,
//! throwaway PostgreSQL and runs the real `pgbunker` binary.

mod support;
mod torture;

mod architecture;
mod audit;
mod bad_input;
mod census;
mod cloud;
mod consistency;
mod copy;
mod dedup;
mod demo;
mod diff;
mod errors;
mod export;
mod faults;
mod format;
mod interrupted;
mod keys;
mod large_objects;
mod mask;
mod matrix;
mod ordering;
mod partial;
mod progress;
mod prune;
mod readme;
mod regression;
mod repository;
mod restore_test;
mod revocation;
mod roles;
mod roundtrip;
mod s3;
mod secrets;
mod security;
mod selective;
mod tamper;
mod text_copy;
mod tls;
mod user_types;
mod verify;
