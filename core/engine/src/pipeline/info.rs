//! What a run did, printed like dlt's `load_info` (spec k).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The outcome of one load package.
#[derive(Debug, Clone, Serialize)]
pub struct PackageInfo {
    /// Load id.
    pub load_id: String,
    /// `LOADED`, `FAILED` (refused by the destination, nothing committed) or `NORMALIZED`
    /// (pending).
    pub state: String,
    /// Failed jobs: file name and message.
    pub failed_jobs: Vec<(String, String)>,
    /// Rows per table.
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// What a pipeline run loaded.
#[derive(Debug, Clone, Serialize)]
pub struct LoadInfo {
    /// Pipeline name.
    pub pipeline_name: String,
    /// Destination name (e.g. `duckdb`).
    pub destination_name: String,
    /// Where the destination stores data, without secrets (e.g. `duckdb:////abs/path.duckdb`).
    pub destination_location: String,
    /// Dataset name.
    pub dataset_name: String,
    /// The packages, oldest first.
    pub packages: Vec<PackageInfo>,
    /// Duration of the load step.
    #[serde(skip)]
    pub load_duration: Duration,
    /// Seconds the load step took.
    pub load_seconds: f64,
    /// Whether pending packages were loaded instead of new data being extracted.
    pub loaded_pending_only: bool,
}

impl LoadInfo {
    /// Whether any job failed.
    pub fn has_failed_jobs(&self) -> bool {
        self.packages.iter().any(|p| !p.failed_jobs.is_empty())
    }

    /// Load ids of the packages.
    pub fn load_ids(&self) -> Vec<&str> {
        self.packages.iter().map(|p| p.load_id.as_str()).collect()
    }
}

/// A duration as dlt's `humanize` prints it (`0.72 seconds`, `2 minutes and 3.40 seconds`).
pub fn humanize(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2} seconds")
    } else {
        let m = (secs / 60.0).floor() as u64;
        format!(
            "{m} minute{} and {:.2} seconds",
            if m == 1 { "" } else { "s" },
            secs - (m * 60) as f64
        )
    }
}

impl fmt::Display for LoadInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Pipeline {} load step finished in {}",
            self.pipeline_name,
            humanize(self.load_duration)
        )?;
        let loaded = self.packages.iter().filter(|p| p.state == "LOADED").count();
        let total = self.packages.len();
        if loaded == total {
            writeln!(
                f,
                "{total} load package(s) were loaded to destination {} and into dataset {}",
                self.destination_name, self.dataset_name
            )?;
        } else {
            writeln!(
                f,
                "{loaded} of {total} load package(s) were loaded to destination {} and into dataset {}",
                self.destination_name, self.dataset_name
            )?;
        }
        write!(
            f,
            "The {} destination used {} location to store data",
            self.destination_name, self.destination_location
        )?;
        for p in &self.packages {
            write!(f, "\nLoad package {} is {}", p.load_id, p.state)?;
            if p.state == "FAILED" {
                write!(f, " and was NOT loaded (nothing of it was committed)")?;
            } else if p.state != "LOADED" {
                write!(f, " and NOT YET LOADED to the destination")?;
            }
            if p.failed_jobs.is_empty() {
                write!(f, " and contains no failed jobs")?;
            } else {
                write!(f, " and {} FAILED job(s)!", p.failed_jobs.len())?;
                for (job, message) in &p.failed_jobs {
                    write!(f, "\n  failed job {job}: {message}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_dlt() {
        let info = LoadInfo {
            pipeline_name: "golden_scd2".into(),
            destination_name: "duckdb".into(),
            destination_location: "duckdb:///<WORKDIR>/dest.duckdb".into(),
            dataset_name: "golden".into(),
            packages: vec![PackageInfo {
                load_id: "<LOAD_ID>".into(),
                state: "LOADED".into(),
                failed_jobs: vec![],
                rows: Default::default(),
            }],
            load_duration: Duration::from_millis(720),
            load_seconds: 0.72,
            loaded_pending_only: false,
        };
        assert_eq!(
            info.to_string(),
            "Pipeline golden_scd2 load step finished in 0.72 seconds\n1 load package(s) were loaded to destination duckdb and into dataset golden\nThe duckdb destination used duckdb:///<WORKDIR>/dest.duckdb location to store data\nLoad package <LOAD_ID> is LOADED and contains no failed jobs"
        );
    }
}
