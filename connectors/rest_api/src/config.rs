//! The rest_api source's configuration (`[sources.rest_api]`): the model is
//! [`sluice_rest::config`] (the `github` source writes it too), re-exported from this crate;
//! the test below checks it against this plugin's `sluice-plugin.toml`.

#[cfg(test)]
mod tests {

    use serde_json::json;

    use crate::{RestApiConfig, RestApiSecrets};

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest = sluice_sdk::testing::assert_manifest_keys::<RestApiConfig, RestApiSecrets>(
            include_str!("../sluice-plugin.toml"),
        );
        // every secret key is a `Secret`: set, none of them prints
        let secrets = sluice_sdk::testing::assert_secrets_hidden(
            &manifest.secrets,
            &json!({ "token": sluice_sdk::testing::SECRET_CANARY }),
            |v| RestApiSecrets::from_json(&v),
        );
        assert!(secrets.auth.is_some());
    }
}
