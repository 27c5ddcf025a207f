//! The rest_api source, exported as `libsluice_source_rest_api.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
