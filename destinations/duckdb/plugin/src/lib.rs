//! The DuckDB destination, exported as `libsluice_destination_duckdb.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
