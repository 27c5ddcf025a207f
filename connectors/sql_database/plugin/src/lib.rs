//! The sql_database source, exported as `libsluice_source_sql_database.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
