use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConnectionId, CorrelationId, Family, ParseError, Payload, TenantId, subject};

/// A connection's status changed. The status worker stores it; the bridge
/// pushes it to the tenant's dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusChanged {
    /// The new status.
    pub status: ConnectionStatus,
}

impl Payload for StatusChanged {
    const TYPE: &'static str = "connector.status.changed";
    const FAMILY: Family = Family::Status;

    fn subject(&self, tenant: &TenantId, connection: &ConnectionId) -> String {
        subject::status(tenant, connection)
    }
}

/// A connection's status, with the details the dashboard shows for it.
///
/// In JSON the state is the `state` tag next to the details:
/// `{"state": "syncing", "records": 120, "pages": 3, "stream": "posts"}`.
///
/// # State machine
///
/// | state | meaning | next states |
/// | --- | --- | --- |
/// | `pending` | the connection exists; its validate request is queued | `validating` |
/// | `validating` | the validate worker is asking the provider | `saving`, `invalid`, `retrying`,
/// `failed` |
/// | `invalid` | the provider refused the credentials | `validating` |
/// | `saving` | credentials are valid; the save worker is storing them | `syncing`, `retrying`,
/// `failed` |
/// | `syncing` | a sync is running (repeated as progress) | `syncing`, `synced`, `retrying`,
/// `failed`, `reauth_required` |
/// | `synced` | the last sync completed: every record is stored | `syncing`, `validating` |
/// | `partial` | the last sync ended without a complete picture; `reason` says why | `syncing`,
/// `validating` |
/// | `retrying` | a step failed transiently and will run again at `next_at` | the retried step's
/// state, `retrying`, `failed`, `reauth_required` |
/// | `failed` | a step gave up: retries exhausted or a permanent error | `validating`, `syncing` |
/// | `reauth_required` | the provider revoked access; the user must authorize again | `validating`
/// |
/// | `disconnected` | the user removed the connection | none |
///
/// Any state may also go to `disconnected`, and `validating` follows any
/// state but `disconnected` when the user submits new credentials. The table
/// is what producers follow; consumers store the latest status by
/// `occurred_at` rather than refuse a transition, because a flow the user
/// restarts mid-way legitimately interleaves with the one it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// The connection exists; its validate request is queued.
    Pending,
    /// The validate worker is asking the provider whether the credentials work.
    Validating,
    /// The provider refused the credentials; the user must supply new ones.
    Invalid {
        /// What the provider said, safe to show the user.
        reason: String,
    },
    /// Credentials are valid; the save worker is storing them.
    Saving,
    /// A sync is running.
    Syncing {
        /// Records stored so far in this run.
        records: u64,
        /// Pages fetched so far in this run.
        pages: u64,
        /// The stream being synced, if the connector has several.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<String>,
    },
    /// The last sync completed: every record the provider has is stored.
    Synced {
        /// Live records the connection has now, in all streams.
        records: u64,
        /// What the run read and changed.
        #[serde(default)]
        counts: SyncCounts,
        /// How long the run took, in milliseconds.
        duration_ms: u64,
        /// When the run completed (RFC 3339, UTC).
        last_sync_at: DateTime<Utc>,
        /// The run's id: the same for every delivery of one sync request,
        /// so a consumer that acts once per run (usage metering) can tell a
        /// repeated report from a new run. Absent from older producers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<CorrelationId>,
    },
    /// The last sync ran to its end but cannot promise that every record is
    /// stored: the provider changed in a way paging could not follow, an
    /// object could not be read, or the run reached its budget and goes on
    /// in the next one. What it stored is stored.
    Partial {
        /// Live records the connection has now, in all streams.
        records: u64,
        /// What the run read and changed.
        #[serde(default)]
        counts: SyncCounts,
        /// How long the run took, in milliseconds.
        duration_ms: u64,
        /// When the run ended (RFC 3339, UTC).
        last_sync_at: DateTime<Utc>,
        /// Why the run is not complete, safe to show the user.
        reason: String,
        /// The run's id; see [`ConnectionStatus::Synced`]'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<CorrelationId>,
    },
    /// A step failed transiently and runs again at `next_at`.
    Retrying {
        /// The attempt that failed, from 1.
        attempt: u32,
        /// When the next attempt is due (RFC 3339, UTC).
        next_at: DateTime<Utc>,
        /// Why the attempt failed, safe to show the user.
        reason: String,
    },
    /// A step gave up.
    Failed {
        /// Why, safe to show the user.
        reason: String,
        /// Whether the cause was transient, so that a manual retry may succeed.
        retryable: bool,
    },
    /// The provider revoked access (token revoked or refresh refused); the user must authorize
    /// again.
    ReauthRequired {
        /// What the provider said, safe to show the user.
        reason: String,
    },
    /// The user removed the connection.
    Disconnected,
}

/// What one sync run read from the provider and changed in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncCounts {
    /// Records read from the provider.
    pub seen: u64,
    /// Records stored for the first time, or again after a deletion.
    pub added: u64,
    /// Records whose content changed.
    pub updated: u64,
    /// Records removed at the provider, now marked deleted.
    pub deleted: u64,
    /// HTTP requests sent to the provider's API for the run's pages,
    /// retries included; 0 from producers older than this field.
    #[serde(default)]
    pub requests: u64,
}

impl ConnectionStatus {
    /// The state without its details.
    pub fn state(&self) -> ConnectionState {
        match self {
            Self::Pending => ConnectionState::Pending,
            Self::Validating => ConnectionState::Validating,
            Self::Invalid { .. } => ConnectionState::Invalid,
            Self::Saving => ConnectionState::Saving,
            Self::Syncing { .. } => ConnectionState::Syncing,
            Self::Synced { .. } => ConnectionState::Synced,
            Self::Partial { .. } => ConnectionState::Partial,
            Self::Retrying { .. } => ConnectionState::Retrying,
            Self::Failed { .. } => ConnectionState::Failed,
            Self::ReauthRequired { .. } => ConnectionState::ReauthRequired,
            Self::Disconnected => ConnectionState::Disconnected,
        }
    }

    /// The id of the sync run a `synced` or `partial` status ends, when its
    /// producer says.
    pub fn run_id(&self) -> Option<CorrelationId> {
        match self {
            Self::Synced { run_id, .. } | Self::Partial { run_id, .. } => *run_id,
            _ => None,
        }
    }

    /// Whether no work is under way; see [`ConnectionState::is_terminal`].
    pub fn is_terminal(&self) -> bool {
        self.state().is_terminal()
    }
}

/// The state of a [`ConnectionStatus`] without its details, for a database
/// column or a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// See [`ConnectionStatus::Pending`].
    Pending,
    /// See [`ConnectionStatus::Validating`].
    Validating,
    /// See [`ConnectionStatus::Invalid`].
    Invalid,
    /// See [`ConnectionStatus::Saving`].
    Saving,
    /// See [`ConnectionStatus::Syncing`].
    Syncing,
    /// See [`ConnectionStatus::Synced`].
    Synced,
    /// See [`ConnectionStatus::Partial`].
    Partial,
    /// See [`ConnectionStatus::Retrying`].
    Retrying,
    /// See [`ConnectionStatus::Failed`].
    Failed,
    /// See [`ConnectionStatus::ReauthRequired`].
    ReauthRequired,
    /// See [`ConnectionStatus::Disconnected`].
    Disconnected,
}

impl ConnectionState {
    /// Every state.
    pub const ALL: [Self; 11] = [
        Self::Pending,
        Self::Validating,
        Self::Invalid,
        Self::Saving,
        Self::Syncing,
        Self::Synced,
        Self::Partial,
        Self::Retrying,
        Self::Failed,
        Self::ReauthRequired,
        Self::Disconnected,
    ];

    /// The snake_case name, as in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Validating => "validating",
            Self::Invalid => "invalid",
            Self::Saving => "saving",
            Self::Syncing => "syncing",
            Self::Synced => "synced",
            Self::Partial => "partial",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::ReauthRequired => "reauth_required",
            Self::Disconnected => "disconnected",
        }
    }

    /// Whether no work is under way: nothing changes this state until the
    /// user acts or a schedule fires. A dashboard stops its spinner on it.
    pub const fn is_terminal(self) -> bool {
        match self {
            Self::Invalid
            | Self::Synced
            | Self::Partial
            | Self::Failed
            | Self::ReauthRequired
            | Self::Disconnected => true,
            Self::Pending | Self::Validating | Self::Saving | Self::Syncing | Self::Retrying => {
                false
            }
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionState {
    type Err = ParseError;

    fn from_str(value: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| ParseError::UnknownState {
                value: value.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in ConnectionState::ALL {
            assert_eq!(state.as_str().parse::<ConnectionState>().unwrap(), state);
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        assert!(matches!(
            "done".parse::<ConnectionState>(),
            Err(ParseError::UnknownState { .. })
        ));
    }

    #[test]
    fn the_status_tag_is_the_state_name() {
        let statuses = [
            ConnectionStatus::Pending,
            ConnectionStatus::Invalid {
                reason: "bad key".into(),
            },
            ConnectionStatus::Syncing {
                records: 1,
                pages: 1,
                stream: None,
            },
            ConnectionStatus::Failed {
                reason: "gone".into(),
                retryable: false,
            },
            ConnectionStatus::ReauthRequired {
                reason: "revoked".into(),
            },
        ];
        for status in statuses {
            let value = serde_json::to_value(&status).unwrap();
            assert_eq!(value["state"], json!(status.state().as_str()));
        }
    }

    #[test]
    fn a_status_serializes_flat_with_its_details() {
        let status = ConnectionStatus::Syncing {
            records: 120,
            pages: 3,
            stream: Some("posts".into()),
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"state": "syncing", "records": 120, "pages": 3, "stream": "posts"})
        );
    }

    #[test]
    fn only_states_without_work_under_way_are_terminal() {
        let terminal: Vec<_> = ConnectionState::ALL
            .into_iter()
            .filter(|state| state.is_terminal())
            .map(ConnectionState::as_str)
            .collect();
        assert_eq!(
            terminal,
            [
                "invalid",
                "synced",
                "partial",
                "failed",
                "reauth_required",
                "disconnected"
            ]
        );
        assert!(ConnectionStatus::Disconnected.is_terminal());
    }
}
