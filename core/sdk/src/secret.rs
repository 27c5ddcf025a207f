//! [`Secret`]: a value that never prints.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value (token, password, key). `Debug` and `Display` print `***`; the value is only
/// reachable through [`Secret::expose`], so it cannot end up in a log line or an error by
/// accident. It deserializes from the plain value and serializes back to it (secrets cross the
/// plugin boundary as JSON in a separate `secrets_json` string the host never logs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value. Call it at the point of use only.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        #[derive(Debug, Deserialize)]
        struct Creds {
            #[allow(dead_code)]
            user: String,
            password: Secret<String>,
        }
        let c: Creds = serde_json::from_str(r#"{"user":"u","password":"hunter2"}"#).expect("json");
        let printed = format!("{c:?} {}", c.password);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(c.password.expose(), "hunter2");
    }
}
