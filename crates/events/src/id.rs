use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::ParseError;

/// Longest accepted [`TenantId`], [`ConnectionId`] or [`ConnectorId`], in characters.
pub const MAX_ID_LEN: usize = 64;

/// Placeholder id for dead letters whose original subject named no valid tenant or connection.
const UNKNOWN: &str = "_unknown";

/// Which identifier a [`ParseError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A [`TenantId`].
    Tenant,
    /// A [`ConnectionId`].
    Connection,
    /// A [`ConnectorId`].
    Connector,
    /// An [`EventId`].
    Event,
    /// A [`CorrelationId`].
    Correlation,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tenant => "tenant id",
            Self::Connection => "connection id",
            Self::Connector => "connector id",
            Self::Event => "event id",
            Self::Correlation => "correlation id",
        })
    }
}

/// The characters a token id may contain.
#[derive(Clone, Copy)]
enum Alphabet {
    /// `[A-Za-z0-9_-]`: safe as a NATS subject token, a Vault path segment and a URL segment.
    Token,
    /// `[a-z0-9_-]`: catalog ids, which are also file and route names.
    Lowercase,
}

impl Alphabet {
    fn allows(self, c: char) -> bool {
        let letter = match self {
            Self::Token => c.is_ascii_alphabetic(),
            Self::Lowercase => c.is_ascii_lowercase(),
        };
        letter || c.is_ascii_digit() || c == '-' || c == '_'
    }

    const fn pattern(self) -> &'static str {
        match self {
            Self::Token => "^[A-Za-z0-9_-]+$",
            Self::Lowercase => "^[a-z0-9_-]+$",
        }
    }

    const fn rule(self) -> &'static str {
        match self {
            Self::Token => "in a subject token; use letters, digits, '-' or '_'",
            Self::Lowercase => "in a connector id; use lowercase letters, digits, '-' or '_'",
        }
    }

    fn check(self, kind: IdKind, value: &str) -> Result<(), ParseError> {
        if value.is_empty() {
            return Err(ParseError::Empty { kind });
        }
        let len = value.chars().count();
        if len > MAX_ID_LEN {
            return Err(ParseError::TooLong { kind, len });
        }
        match value.chars().find(|&c| !self.allows(c)) {
            Some(ch) => Err(ParseError::InvalidChar {
                kind,
                value: value.to_owned(),
                ch,
                rule: self.rule(),
            }),
            None => Ok(()),
        }
    }
}

/// Defines a string id checked against an [`Alphabet`], with the trait impls
/// every id shares. Deserializing goes through `TryFrom<String>`, so an invalid
/// value fails with the [`ParseError`] message.
macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $alphabet:expr, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Checks `value` and makes a `", stringify!($name), "` of it.")]
            ///
            /// # Errors
            ///
            /// The value is empty, longer than [`MAX_ID_LEN`] characters or
            /// has a character outside the alphabet.
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                $alphabet.check($kind, value)?;
                Ok(Self(value.to_owned()))
            }

            /// The placeholder `_unknown`, used only to address a dead letter
            /// whose original message and subject did not say this id.
            pub fn unknown() -> Self {
                Self(UNKNOWN.to_owned())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(value: &str) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;

            fn try_from(value: String) -> Result<Self, ParseError> {
                $alphabet.check($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!(module_path!(), "::", stringify!($name)).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": $description,
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ID_LEN,
                    "pattern": $alphabet.pattern(),
                })
            }
        }
    };
}

token_id! {
    /// A customer of the platform: 1 to 64 of `[A-Za-z0-9_-]`.
    ///
    /// It is a subject token (`connector.<step>.<tenant>.<connection>`), so
    /// the alphabet excludes `.`, `*`, `>` and whitespace, which would change
    /// what a subject or a subscription filter matches.
    TenantId, IdKind::Tenant, Alphabet::Token,
    "Tenant that owns the connection: 1 to 64 letters, digits, '-' or '_'."
}

token_id! {
    /// One connected third-party account of a tenant: 1 to 64 of `[A-Za-z0-9_-]`.
    ///
    /// A subject token like [`TenantId`]; [`ConnectionId::new`] makes a fresh one.
    ConnectionId, IdKind::Connection, Alphabet::Token,
    "Connection (one third-party account of the tenant): 1 to 64 letters, digits, '-' or '_'."
}

token_id! {
    /// A provider in the connector catalog, such as `wordpress` or
    /// `google-analytics`: 1 to 64 of `[a-z0-9_-]`.
    ConnectorId, IdKind::Connector, Alphabet::Lowercase,
    "Catalog id of the provider, such as wordpress or google-analytics: \
     1 to 64 lowercase letters, digits, '-' or '_'."
}

impl ConnectionId {
    /// A fresh connection id: a hyphenated, time-ordered UUID v7.
    #[expect(
        clippy::new_without_default,
        reason = "a fresh random id is not a default value"
    )]
    pub fn new() -> Self {
        Self(Uuid::now_v7().hyphenated().to_string())
    }
}

/// Defines a UUID id, serialized as the hyphenated UUID string.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            #[expect(
                clippy::new_without_default,
                reason = "a fresh random id is not a default value"
            )]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            #[doc = concat!("Parses a `", stringify!($name), "` from a UUID string.")]
            ///
            /// # Errors
            ///
            /// The value is not a UUID.
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(value)
                    .map(Self)
                    .map_err(|source| ParseError::NotUuid { kind: $kind, source })
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(value: &str) -> Result<Self, ParseError> {
                Self::parse(value)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id! {
    /// Identity of one event. Publishers use it as the JetStream dedupe id
    /// (`Nats-Msg-Id`), so a retried publish of the same envelope is stored once.
    EventId, IdKind::Event
}

uuid_id! {
    /// Identity of one flow (a setup, a sync run): the same in every event the
    /// flow causes, so logs, traces and dashboards can group them.
    CorrelationId, IdKind::Correlation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_tenant_ids_are_accepted_verbatim() {
        for value in ["a", "Acme_Corp-42", &"x".repeat(MAX_ID_LEN)] {
            assert_eq!(TenantId::parse(value).unwrap().as_str(), value);
        }
    }

    #[test]
    fn empty_ids_are_refused() {
        let err = TenantId::parse("").unwrap_err();
        assert_eq!(
            err,
            ParseError::Empty {
                kind: IdKind::Tenant
            }
        );
        assert_eq!(err.to_string(), "tenant id is empty");
    }

    #[test]
    fn ids_longer_than_the_limit_are_refused_with_their_length() {
        let err = ConnectionId::parse(&"x".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection id is longer than 64 characters (it has 65)"
        );
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        let err = TenantId::parse(&"é".repeat(40)).unwrap_err();
        assert!(
            matches!(err, ParseError::InvalidChar { ch: 'é', .. }),
            "{err}"
        );
    }

    #[test]
    fn a_dot_is_refused_because_it_would_split_the_subject_token() {
        let err = TenantId::parse("a.b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant id \"a.b\" contains '.', which is not allowed in a subject token; \
             use letters, digits, '-' or '_'"
        );
    }

    #[test]
    fn wildcards_whitespace_control_and_non_ascii_characters_are_refused() {
        for (value, bad) in [
            ("a*", '*'),
            ("a>", '>'),
            ("a b", ' '),
            ("a\tb", '\t'),
            ("a\nb", '\n'),
            ("a\0", '\0'),
            ("café", 'é'),
            ("a/b", '/'),
        ] {
            let err = TenantId::parse(value).unwrap_err();
            assert!(
                matches!(err, ParseError::InvalidChar { ch, .. } if ch == bad),
                "{value:?} gave {err}"
            );
        }
    }

    #[test]
    fn control_characters_are_escaped_in_the_message() {
        let err = TenantId::parse("a\nb").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"tenant id "a\nb" contains '\n'"#),
            "{err}"
        );
    }

    #[test]
    fn connector_ids_must_be_lowercase() {
        assert!(ConnectorId::parse("google-analytics").is_ok());
        let err = ConnectorId::parse("WordPress").unwrap_err();
        assert_eq!(
            err.to_string(),
            "connector id \"WordPress\" contains 'W', which is not allowed in a connector id; \
             use lowercase letters, digits, '-' or '_'"
        );
    }

    #[test]
    fn fresh_connection_ids_pass_parse() {
        let id = ConnectionId::new();
        assert_eq!(ConnectionId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn the_unknown_placeholder_is_a_valid_id_of_every_token_kind() {
        assert_eq!(TenantId::parse("_unknown").unwrap(), TenantId::unknown());
        assert_eq!(
            ConnectionId::parse("_unknown").unwrap(),
            ConnectionId::unknown()
        );
        assert_eq!(
            ConnectorId::parse("_unknown").unwrap(),
            ConnectorId::unknown()
        );
    }

    #[test]
    fn deserializing_an_invalid_id_fails_with_the_reason() {
        let err = serde_json::from_str::<TenantId>(r#""a.b""#).unwrap_err();
        assert!(err.to_string().contains("contains '.'"), "{err}");
    }

    #[test]
    fn uuid_ids_display_and_parse_as_hyphenated_uuids() {
        let id = EventId::new();
        assert_eq!(id.to_string().len(), 36);
        assert_eq!(EventId::parse(&id.to_string()).unwrap(), id);
        let err = CorrelationId::parse("nope").unwrap_err();
        assert!(matches!(
            err,
            ParseError::NotUuid {
                kind: IdKind::Correlation,
                ..
            }
        ));
        assert_eq!(err.to_string(), "correlation id is not a UUID");
    }

    #[test]
    fn fresh_uuid_ids_are_version_7() {
        assert_eq!(EventId::new().as_uuid().get_version_num(), 7);
        assert_eq!(CorrelationId::new().as_uuid().get_version_num(), 7);
    }
}
