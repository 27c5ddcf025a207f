//! The GitHub source, exported as `libsluice_source_github.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
