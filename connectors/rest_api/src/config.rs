//! The rest_api source's configuration (`[sources.rest_api]`): the model is
//! [`sluice_rest::config`] (the `github` source writes it too), re-exported from this crate;
//! the test below checks it against this plugin's `sluice-plugin.toml`.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::{json, Map, Value};
    use sluice_sdk::manifest::{ConfigKey, Manifest};

    use crate::{RestApiConfig, RestApiSecrets};

    /// Reads the manifest's keys as `T` (the required ones from their examples, the rest left
    /// out), writes `T` back, and checks that it has exactly the manifest's keys, each at the
    /// manifest's default (null where the manifest has none).
    fn assert_keys_agree<T: DeserializeOwned + Serialize>(keys: &[ConfigKey], section: &str) {
        let mut given = Map::new();
        for k in keys.iter().filter(|k| k.required) {
            let example = k.example.clone().unwrap_or_else(|| {
                panic!("required `{}` has no example in sluice-plugin.toml", k.key)
            });
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

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest =
            Manifest::from_toml(include_str!("../sluice-plugin.toml")).expect("manifest");
        assert_keys_agree::<RestApiConfig>(&manifest.config, "config");
        assert_keys_agree::<RestApiSecrets>(&manifest.secrets, "secrets");
        // every secret key is a `Secret`: set, none of them prints
        let all: Map<String, Value> = manifest
            .secrets
            .iter()
            .map(|k| (k.key.clone(), json!({"token": "s3cret-canary"})))
            .collect();
        let secrets = RestApiSecrets::from_json(&Value::Object(all));
        assert!(secrets.auth.is_some());
        assert!(
            !format!("{secrets:?}").contains("s3cret-canary"),
            "{secrets:?}"
        );
    }
}
