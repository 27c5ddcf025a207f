//! Pipeline state (spec e.3): dlt's state document (engine version 4), its version hash, and
//! the compressed encoding stored in `_dlt_pipeline_state.state`.

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha3::{Digest, Sha3_256};

use crate::hash::sorted_json;
use crate::{Error, Result};

/// dlt's state engine version.
pub const STATE_ENGINE_VERSION: i64 = 4;

/// The pipeline state document.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineState {
    /// The whole document, including `_local`.
    pub doc: Map<String, Value>,
}

impl PipelineState {
    /// A new state for a pipeline (dlt's first state: version 1 once bumped).
    pub fn new(pipeline_name: &str) -> Self {
        let mut doc = Map::new();
        doc.insert("_state_version".into(), json!(0));
        doc.insert("_state_engine_version".into(), json!(STATE_ENGINE_VERSION));
        doc.insert("pipeline_name".into(), json!(pipeline_name));
        doc.insert("_local".into(), json!({"first_run": true}));
        Self { doc }
    }

    /// A state from its JSON document.
    pub fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Object(doc) => Ok(Self { doc }),
            other => Err(Error::data(format!(
                "pipeline state must be an object, got {other}"
            ))),
        }
    }

    /// The document as JSON.
    pub fn to_value(&self) -> Value {
        Value::Object(self.doc.clone())
    }

    /// `_state_version`.
    pub fn version(&self) -> i64 {
        self.doc
            .get("_state_version")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    /// `_version_hash`.
    pub fn version_hash(&self) -> Option<&str> {
        self.doc.get("_version_hash").and_then(Value::as_str)
    }

    /// Sets a top-level key (not `_local`).
    pub fn set(&mut self, key: &str, value: Value) {
        self.doc.insert(key.to_string(), value);
    }

    /// A top-level key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.doc.get(key)
    }

    /// The `_local` part (never synced to the destination).
    pub fn local_mut(&mut self) -> &mut Map<String, Value> {
        let l = self
            .doc
            .entry("_local")
            .or_insert_with(|| Value::Object(Map::new()));
        if !l.is_object() {
            *l = Value::Object(Map::new());
        }
        match l {
            Value::Object(m) => m,
            _ => unreachable!("just made it an object"),
        }
    }

    /// The state of resource `resource` of source section `section` (created empty).
    pub fn resource_state_mut(&mut self, section: &str, resource: &str) -> &mut Map<String, Value> {
        let sources = self
            .doc
            .entry("sources")
            .or_insert_with(|| Value::Object(Map::new()));
        let src = object_entry(sources, section);
        let resources = object_entry(src, "resources");
        match object_entry(resources, resource) {
            Value::Object(m) => m,
            _ => unreachable!("object_entry returns objects"),
        }
    }

    /// Drops the state of a resource (dlt does this for `replace` resources); the source
    /// section is created if missing, as dlt's state access does.
    pub fn reset_resource_state(&mut self, section: &str, resource: &str) {
        let sources = self
            .doc
            .entry("sources")
            .or_insert_with(|| Value::Object(Map::new()));
        let src = object_entry(sources, section);
        if let Some(Value::Object(resources)) = src.get_mut("resources") {
            resources.remove(resource);
        }
    }

    /// The state of a resource, if any.
    pub fn resource_state(&self, section: &str, resource: &str) -> Option<&Map<String, Value>> {
        self.doc
            .get("sources")?
            .get(section)?
            .get("resources")?
            .get(resource)?
            .as_object()
    }

    /// dlt's state version hash: base64 SHA3-256 of the key-sorted JSON of the state without
    /// `_local`, `_state_version`, `_state_engine_version` and `_version_hash`.
    pub fn content_hash(&self) -> String {
        let mut copy = self.doc.clone();
        for k in [
            "_local",
            "_state_version",
            "_state_engine_version",
            "_version_hash",
        ] {
            copy.remove(k);
        }
        let content = sorted_json(&Value::Object(copy));
        STANDARD.encode(Sha3_256::digest(content.as_bytes()))
    }

    /// Bumps `_state_version` and `_version_hash` if the content changed. Returns whether it did.
    pub fn bump_version(&mut self) -> bool {
        let h = self.content_hash();
        if self.version_hash() == Some(h.as_str()) {
            return false;
        }
        let v = self.version() + 1;
        self.doc.insert("_state_version".into(), json!(v));
        self.doc.insert("_version_hash".into(), json!(h));
        true
    }

    /// Whether the state changed since it was last extracted into a package.
    pub fn needs_extract(&self) -> bool {
        let last = self
            .doc
            .get("_local")
            .and_then(|l| l.get("_last_extracted_hash"))
            .and_then(Value::as_str);
        last != self.version_hash()
    }

    /// Records that the current version was extracted.
    pub fn mark_extracted(&mut self, now: &str) {
        let h = self.version_hash().map(String::from);
        let local = self.local_mut();
        local.insert("_last_extracted_at".into(), json!(now));
        if let Some(h) = h {
            local.insert("_last_extracted_hash".into(), json!(h));
        }
    }

    /// The document without `_local`, as stored at the destination.
    pub fn synced(&self) -> Value {
        let mut copy = self.doc.clone();
        copy.remove("_local");
        Value::Object(copy)
    }
}

fn object_entry<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else {
        unreachable!("made an object")
    };
    let e = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e
}

/// `base64(zlib(json))` of the state without `_local`, as dlt stores it.
pub fn compress_state(state: &Value) -> Result<String> {
    let text = serde_json::to_vec(state)?;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&text)
        .map_err(|e| Error::internal(format!("cannot compress the state: {e}")))?;
    let bytes = enc
        .finish()
        .map_err(|e| Error::internal(format!("cannot compress the state: {e}")))?;
    Ok(STANDARD.encode(bytes))
}

/// The largest decompressed state read from a destination (bytes), unless
/// `SLUICE_MAX_STATE_BYTES` says otherwise: a state is a few KiB to a few MiB, and a stored
/// row that inflates past this is refused rather than allowed to fill memory.
pub const DEFAULT_MAX_STATE_BYTES: u64 = 256 << 20;

fn max_state_bytes() -> u64 {
    std::env::var("SLUICE_MAX_STATE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_STATE_BYTES)
}

/// Decodes a stored state: base64 of zlib of JSON, or plain JSON (dlt accepts both).
pub fn decompress_state(text: &str) -> Result<Value> {
    decompress_state_capped(text, max_state_bytes())
}

fn decompress_state_capped(text: &str, cap: u64) -> Result<Value> {
    if text.len() as u64 > cap {
        return Err(state_too_large(cap));
    }
    if let Ok(bytes) = STANDARD.decode(text.trim()) {
        let mut dec = flate2::read::ZlibDecoder::new(&bytes[..]).take(cap.saturating_add(1));
        let mut out = Vec::new();
        if dec.read_to_end(&mut out).is_ok() {
            if out.len() as u64 > cap {
                return Err(state_too_large(cap));
            }
            return serde_json::from_slice(&out)
                .map_err(|e| Error::data(format!("the stored pipeline state is not JSON: {e}")));
        }
    }
    serde_json::from_str(text)
        .map_err(|e| Error::data(format!("cannot decode the stored pipeline state: {e}")))
}

fn state_too_large(cap: u64) -> Error {
    Error::data(format!(
        "the pipeline state stored in the destination decompresses to more than {cap} bytes; it is refused\nhint: if the state really is that large, raise SLUICE_MAX_STATE_BYTES"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_that_inflates_past_the_cap_is_refused() {
        let big = json!({"k": "x".repeat(1 << 20)});
        let packed = compress_state(&big).expect("pack");
        assert!(packed.len() < 64 << 10, "compresses well: {}", packed.len());
        let e = decompress_state_capped(&packed, 512 << 10).expect_err("refused");
        assert!(e.to_string().contains("SLUICE_MAX_STATE_BYTES"), "{e}");
        assert_eq!(
            decompress_state_capped(&packed, 2 << 20).expect("fits"),
            big
        );
    }

    #[test]
    fn version_hash_matches_dlt() {
        // golden scd2: the first state of pipeline golden_scd2 into dataset golden on duckdb
        let mut s = PipelineState::new("golden_scd2");
        s.set("dataset_name", json!("golden"));
        s.set("schema_names", json!(["golden_scd2"]));
        s.set("default_schema_name", json!("golden_scd2"));
        s.set("destination_type", json!("dlt.destinations.duckdb"));
        s.set("destination_name", Value::Null);
        assert!(s.bump_version());
        assert_eq!(s.version(), 1);
        assert_eq!(
            s.version_hash(),
            Some("OPbmNthVBfSNkhM/krXDXylTXJzjWPyU0l59oijmbSY=")
        );
        assert!(!s.bump_version());
        let packed = compress_state(&s.synced()).expect("compress");
        assert_eq!(decompress_state(&packed).expect("decode"), s.synced());
    }
}
