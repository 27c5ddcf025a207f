//! The filesystem source, exported as `libsluice_source_filesystem.so`.
sluice_sdk::export_plugin!(implementation::plugin_module);
