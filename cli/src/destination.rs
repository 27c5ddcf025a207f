//! The destination of a pipeline, resolved once: the plugin found through the registry, opened
//! with its resolved config, and where it writes (for load info). The engine takes it as it is.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use sluice::pipeline::PipelineBuilder;
use sluice_registry::{PluginKind, Registry};
use sluice_sdk::Destination;

/// A destination plugin, loaded and opened.
pub struct Resolved {
    /// The plugin's name (`duckdb`, `postgres`).
    pub name: String,
    /// The opened destination.
    pub destination: Arc<dyn Destination>,
    /// Where it writes, without secrets, when the CLI works it out (see [`duckdb_location`]).
    pub location: Option<String>,
}

impl Resolved {
    /// Loads destination plugin `name` (a name or a path) through `registry` and opens it with
    /// `config` and `secrets`, for pipeline `pipeline`.
    pub fn open(
        registry: &Registry,
        name: &str,
        pipeline: &str,
        config: &Value,
        secrets: &Value,
    ) -> Result<Self, String> {
        let plugin = registry
            .load(PluginKind::Destination, name)
            .map_err(|e| e.to_string())?;
        let destination: Arc<dyn Destination> = Arc::new(
            plugin
                .open_destination(config, secrets)
                .map_err(|e| e.to_string())?,
        );
        // a destination that announces its location (postgres) says it best
        let announced = destination
            .capabilities()
            .extra
            .contains_key("destination_location");
        let location =
            (plugin.name() == "duckdb" && !announced).then(|| duckdb_location(config, pipeline));
        Ok(Self {
            name: plugin.name().to_string(),
            destination,
            location,
        })
    }

    /// Hands the destination (and its location) to `builder`.
    pub fn into_builder(self, builder: PipelineBuilder) -> PipelineBuilder {
        let builder = builder.destination(&self.name, self.destination);
        match &self.location {
            Some(l) => builder.destination_location(l),
            None => builder,
        }
    }
}

/// Where the DuckDB destination writes, as dlt prints it: `duckdb:///` and the absolute path of
/// the file its `credentials` name, else of `<pipeline>.duckdb` in the current folder (the
/// plugin's default).
fn duckdb_location(config: &Value, pipeline: &str) -> String {
    let path = match config.get("credentials").and_then(Value::as_str) {
        None | Some("") | Some(":pipeline:") => format!("{pipeline}.duckdb"),
        Some(p) => p.strip_prefix("duckdb:///").unwrap_or(p).to_string(),
    };
    let abs = std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path));
    format!("duckdb:///{}", abs.display())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn duckdb_writes_to_its_credentials_or_a_file_named_after_the_pipeline() {
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            duckdb_location(&json!({}), "sample"),
            format!("duckdb:///{}", cwd.join("sample.duckdb").display())
        );
        assert_eq!(
            duckdb_location(&json!({"credentials": "/data/x.duckdb"}), "sample"),
            "duckdb:////data/x.duckdb"
        );
        assert_eq!(
            duckdb_location(&json!({"credentials": "duckdb:///data/x.duckdb"}), "sample"),
            format!("duckdb:///{}", cwd.join("data/x.duckdb").display())
        );
    }
}
