//! The registry's tests: another executable loading the real plugin libraries.
//!
//! The workspace's test plugins (`registry/test-plugins/*`) are found next to this test's
//! target directory; the out-of-tree fixtures (`tests/fixtures/plugins`) under
//! `$CARGO_TARGET_DIR/fixtures/release` (built by `scripts/build-fixtures.sh`), or wherever
//! `SLUICE_FIXTURES_DIR` points.

mod support;

mod abi_checks;
mod conformance;
mod containment;
mod discovery;
mod streaming;
mod trust;
