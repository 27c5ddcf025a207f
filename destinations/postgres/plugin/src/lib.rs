//! The PostgreSQL destination, exported as `libsluice_destination_postgres.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
