//! The options of one run, and the write disposition a user gives for a whole run.

use serde_json::Value;
use sluice_sdk::resource::{WriteDispositionConfig, WriteDispositionHint};
use sluice_sdk::schema::{MergeStrategy, WriteDisposition};

use super::{ProgressEvent, ProgressHook};
use crate::{Error, Result};

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Extract the resources one after the other (default: independent resources run
    /// concurrently, one thread each).
    pub sequential: bool,
    /// Called with progress events.
    pub progress: Option<ProgressHook>,
    /// Only these resources (default: the source's selected resources).
    pub resources: Option<Vec<String>>,
    /// Stop each resource after this many items/pages.
    pub limit: Option<u64>,
    /// The source section in the state and the schema name (default: the pipeline name).
    pub section: Option<String>,
    /// Overrides the write disposition of every resource (dlt's `pipeline.run(...,
    /// write_disposition=...)`); [`parse_write_disposition`] reads one a user gave.
    pub write_disposition: Option<WriteDispositionHint>,
}

impl RunOptions {
    pub(super) fn report(&self, e: ProgressEvent) {
        if let Some(h) = &self.progress {
            (h.0)(&e);
        }
    }
}

/// The write dispositions, in dlt's order.
const DISPOSITIONS: [WriteDisposition; 4] = [
    WriteDisposition::Skip,
    WriteDisposition::Append,
    WriteDisposition::Replace,
    WriteDisposition::Merge,
];

/// The merge strategies, in dlt's order.
const STRATEGIES: [MergeStrategy; 4] = [
    MergeStrategy::DeleteInsert,
    MergeStrategy::Scd2,
    MergeStrategy::Upsert,
    MergeStrategy::InsertOnly,
];

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter()
        .map(|&v| format!("`{}`", name(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a write disposition a user gave (a pipeline file, the command line): a name
/// (`append`, `replace`, `merge`, `skip`) or dlt's table form
/// (`{"disposition": "merge", "strategy": "scd2"}`). Anything else is a config error that names
/// the value and the accepted ones.
pub fn parse_write_disposition(value: &Value) -> Result<WriteDispositionHint> {
    let accepted = names(&DISPOSITIONS, WriteDisposition::as_str);
    match value {
        Value::String(name) => DISPOSITIONS
            .into_iter()
            .find(|d| d.as_str() == name)
            .map(WriteDispositionHint::Name)
            .ok_or_else(|| {
                Error::config(format!(
                    "invalid write disposition `{name}`\nhint: use one of {accepted}"
                ))
            }),
        Value::Object(_) => serde_json::from_value::<WriteDispositionConfig>(value.clone())
            .map(WriteDispositionHint::Config)
            .map_err(|e| {
                Error::config(format!(
                    "invalid write disposition `{value}`: {e}\nhint: `disposition` is one of {accepted}; `strategy` (of merge) one of {}",
                    names(&STRATEGIES, MergeStrategy::as_str)
                ))
            }),
        other => Err(Error::config(format!(
            "invalid write disposition `{other}`\nhint: use one of {accepted}, or dlt's table form {{ disposition = \"merge\", strategy = \"scd2\" }}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn write_dispositions_are_read_by_name_and_in_table_form() {
        for d in DISPOSITIONS {
            assert_eq!(
                parse_write_disposition(&json!(d.as_str())).expect("a name"),
                WriteDispositionHint::Name(d)
            );
        }
        let scd2 = parse_write_disposition(&json!({"disposition": "merge", "strategy": "scd2"}))
            .expect("table form");
        assert_eq!(scd2.disposition(), WriteDisposition::Merge);
        assert_eq!(scd2.strategy(), Some(MergeStrategy::Scd2));
    }

    #[test]
    fn an_invalid_write_disposition_names_the_value_and_the_accepted_ones() {
        let e = parse_write_disposition(&json!("upsert"))
            .expect_err("not a disposition")
            .to_string();
        assert!(
            e.contains("`upsert`")
                && ["`skip`", "`append`", "`replace`", "`merge`"]
                    .iter()
                    .all(|n| e.contains(n)),
            "{e}"
        );
        // names are dlt's, lowercase
        assert!(parse_write_disposition(&json!("Replace")).is_err());
        let e = parse_write_disposition(&json!({"disposition": "merge", "strategy": "newest"}))
            .expect_err("not a strategy")
            .to_string();
        assert!(e.contains("newest") && e.contains("`scd2`"), "{e}");
        let e = parse_write_disposition(&json!(3))
            .expect_err("not a name")
            .to_string();
        assert!(e.contains("`3`") && e.contains("`append`"), "{e}");
    }
}
