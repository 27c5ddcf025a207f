fn main() {
    sluice_plugin_build::emit_manifest("sluice_destination_postgres");
}
