//! Serde adapters that write a `SecretString` in clear text, for
//! `#[serde(with = "...")]` on the fields of values whose serialised form
//! goes only to a secret store: [`Credentials`](crate::Credentials) to
//! Vault, a pending OAuth authorization to the gateway's state bucket.
//! Never use them on anything that reaches events, logs or Postgres.

/// For a `SecretString` field.
pub mod secret {
    use secrecy::{ExposeSecret as _, SecretString};
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes the secret as a string.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn serialize<S: Serializer>(
        secret: &SecretString,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose_secret())
    }

    /// Reads a string into a secret.
    ///
    /// # Errors
    ///
    /// The deserializer's, for anything but a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SecretString, D::Error> {
        String::deserialize(deserializer).map(SecretString::from)
    }
}

/// For an `Option<SecretString>` field.
pub mod optional_secret {
    use secrecy::{ExposeSecret as _, SecretString};
    use serde::{Deserialize as _, Deserializer, Serializer};

    /// Writes the secret as a string, or `null`.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn serialize<S: Serializer>(
        secret: &Option<SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => serializer.serialize_some(secret.expose_secret()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a string or `null`.
    ///
    /// # Errors
    ///
    /// The deserializer's, for anything but a string or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SecretString>, D::Error> {
        Option::<String>::deserialize(deserializer).map(|secret| secret.map(SecretString::from))
    }
}
