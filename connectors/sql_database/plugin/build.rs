fn main() {
    sluice_plugin_build::emit_manifest("sluice_source_sql_database");
}
