//! Names the SQL destinations derive from the dataset name.
//!
//! ```
//! use sluice_sql::naming::{staging_dataset, STAGING_DATASET_NAME_LAYOUT};
//! assert_eq!(staging_dataset(STAGING_DATASET_NAME_LAYOUT, "sales"), "sales_staging");
//! assert_eq!(staging_dataset("stage_%s", "sales"), "stage_sales");
//! ```

/// dlt's default `staging_dataset_name_layout`: the staging dataset of `sales` is
/// `sales_staging`. Every SQL destination's config default and its manifest's `default` are
/// this value (each plugin's config test checks its manifest against it).
pub const STAGING_DATASET_NAME_LAYOUT: &str = "%s_staging";

/// The staging dataset of `dataset` under `layout` (`%s` stands for the dataset name).
pub fn staging_dataset(layout: &str, dataset: &str) -> String {
    layout.replace("%s", dataset)
}
