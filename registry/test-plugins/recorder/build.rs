fn main() {
    sluice_plugin_build::emit_manifest_from("sluice-plugin.toml", "sluice_destination_recorder");
}
