use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use crate::{ConnectionId, Family, TenantId};

mod dead_letter;
mod health;
mod save;
mod status;
mod sync;
mod validate;

pub use dead_letter::DeadLetter;
pub use health::{HealthChanged, HealthState};
pub use save::{AccountInfo, SaveRequested};
pub use status::{ConnectionState, ConnectionStatus, StatusChanged, SyncCounts};
pub use sync::{SyncRequested, SyncTrigger};
pub use validate::{SetupOrigin, ValidateRequested};

/// The `data` of an [`Envelope`](crate::Envelope): one event type.
///
/// The trait is sealed. Every event type lives in this crate, so that
/// `schemas/` and `asyncapi.yaml` describe all of them and
/// [`Envelope::to_json`](crate::Envelope::to_json) can promise not to fail.
/// Payloads carry references (a Vault KV version, a provider account id),
/// never a secret: events are stored in JetStream and copied to dead letters
/// and logs.
pub trait Payload:
    Serialize
    + DeserializeOwned
    + JsonSchema
    + std::fmt::Debug
    + Clone
    + PartialEq
    + Send
    + Sync
    + 'static
    + sealed::Sealed
{
    /// The envelope's `type`, such as `connector.validate.requested`.
    const TYPE: &'static str;

    /// The subject family the event travels on; its consumers filter on
    /// [`Family::filter`].
    const FAMILY: Family;

    /// The subject to publish this payload on for `tenant` and `connection`,
    /// always in [`Self::FAMILY`].
    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String;
}

mod sealed {
    pub trait Sealed {}

    impl Sealed for super::ValidateRequested {}
    impl Sealed for super::SaveRequested {}
    impl Sealed for super::SyncRequested {}
    impl Sealed for super::StatusChanged {}
    impl Sealed for super::DeadLetter {}
    impl Sealed for super::HealthChanged {}
}
