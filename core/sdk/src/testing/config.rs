//! A plugin's config struct against its manifest: one source of truth for keys and defaults.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::manifest::ConfigKey;

/// Reads a plugin's manifest (`sluice-plugin.toml` text) and checks that its `[[config]]`
/// entries agree with `C` and its `[[secrets]]` entries with `S` ([`assert_config_keys`]);
/// returns the manifest for further checks ([`assert_secrets_hidden`]).
///
/// # Panics
/// When the manifest does not parse or either section disagrees.
pub fn assert_manifest_keys<C, S>(manifest_toml: &str) -> crate::manifest::Manifest
where
    C: DeserializeOwned + Serialize,
    S: DeserializeOwned + Serialize,
{
    let manifest = crate::manifest::Manifest::from_toml(manifest_toml)
        .unwrap_or_else(|e| panic!("sluice-plugin.toml: {e}"));
    assert_config_keys::<C>(&manifest.config, "config");
    assert_config_keys::<S>(&manifest.secrets, "secrets");
    manifest
}

/// Asserts that the config struct `T` and the manifest's `keys` (its `[[config]]` or
/// `[[secrets]]` entries, named by `section` in messages) agree: `T` is read from the required
/// keys' examples (the other keys left out), written back, and must have exactly the manifest's
/// keys, each optional one at the manifest's default (null where the manifest has none). A key
/// added on one side only, or a default changed on one side only, fails.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Config {
///     #[serde(default = "ten")]
///     limit: u32,
/// }
/// fn ten() -> u32 { 10 }
/// let manifest = sluice_sdk::manifest::Manifest::from_toml(r#"
///     name = "demo"
///     kind = "source"
///     [[config]]
///     key = "limit"
///     type = "integer"
///     default = 10
/// "#).unwrap();
/// sluice_sdk::testing::assert_config_keys::<Config>(&manifest.config, "config");
/// ```
///
/// # Panics
/// When they disagree, naming the key and both sides.
pub fn assert_config_keys<T: DeserializeOwned + Serialize>(keys: &[ConfigKey], section: &str) {
    let mut given = Map::new();
    for k in keys.iter().filter(|k| k.required) {
        let example = k
            .example
            .clone()
            .unwrap_or_else(|| panic!("required `{}` has no example in sluice-plugin.toml", k.key));
        given.insert(k.key.clone(), example);
    }
    let read: T = serde_json::from_value(Value::Object(given)).expect("read the manifest");
    let Ok(Value::Object(written)) = serde_json::to_value(&read) else {
        panic!("the [[{section}]] struct does not write a JSON object");
    };
    let in_manifest: BTreeSet<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let in_struct: BTreeSet<&str> = written.keys().map(String::as_str).collect();
    assert_eq!(
        in_manifest, in_struct,
        "[[{section}]] keys of sluice-plugin.toml (left) and fields of the struct (right)"
    );
    for k in keys.iter().filter(|k| !k.required) {
        let default = k.default.clone().unwrap_or(Value::Null);
        let same = match (&default, &written[&k.key]) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        };
        assert!(
            same,
            "default of `{}`: sluice-plugin.toml says {default}, the struct {}",
            k.key, written[&k.key]
        );
    }
}

/// The text [`assert_secrets_hidden`] looks for: put it in the value each secret key gets.
pub const SECRET_CANARY: &str = "s3cret-canary";

/// Asserts that a plugin's secrets keep every `[[secrets]]` key of its manifest out of sight:
/// each key is given `each` (a value holding [`SECRET_CANARY`]), `parse` reads them as the
/// plugin does, and the canary must not show in the result's `Debug`. Returns what `parse`
/// read, for checks of its own.
///
/// # Panics
/// When the canary shows.
pub fn assert_secrets_hidden<T: std::fmt::Debug>(
    keys: &[ConfigKey],
    each: &Value,
    parse: impl FnOnce(Value) -> T,
) -> T {
    let all: Map<String, Value> = keys.iter().map(|k| (k.key.clone(), each.clone())).collect();
    let secrets = parse(Value::Object(all));
    let shown = format!("{secrets:?}");
    assert!(!shown.contains(SECRET_CANARY), "a secret shows: {shown}");
    secrets
}
