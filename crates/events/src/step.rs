use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ParseError, subject};

/// A step of the connection pipeline: validate -> save -> sync, with status
/// reports from each, and the steps that act on those reports (meter,
/// webhook). Each step has its own durable consumer and its own dead
/// letters; the status, meter and webhook steps read the same subjects (see
/// [`Step::family`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Check staged credentials against the provider.
    Validate,
    /// Make the staged credentials the ones in use and record the connection.
    Save,
    /// Page through the provider's API and store its records.
    Sync,
    /// Persist a status change and fan it out to dashboards.
    Status,
    /// Report each completed sync's usage to the billing system (Lago).
    Meter,
    /// File connection state changes and sync completions as deliveries to
    /// the tenant's webhook endpoints.
    Webhook,
}

impl Step {
    /// Every step, in pipeline order.
    pub const ALL: [Self; 6] = [
        Self::Validate,
        Self::Save,
        Self::Sync,
        Self::Status,
        Self::Meter,
        Self::Webhook,
    ];

    /// The lowercase name, as in dead-letter subjects and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Save => "save",
            Self::Sync => "sync",
            Self::Status => "status",
            Self::Meter => "meter",
            Self::Webhook => "webhook",
        }
    }

    /// The subjects the step consumes: its own family, or for the meter
    /// and webhook steps, the status changes they read alongside the
    /// status step.
    pub const fn family(self) -> Family {
        match self {
            Self::Validate => Family::Validate,
            Self::Save => Family::Save,
            Self::Sync => Family::Sync,
            Self::Status | Self::Meter | Self::Webhook => Family::Status,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Step {
    type Err = ParseError;

    fn from_str(value: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|step| step.as_str() == value)
            .ok_or_else(|| ParseError::UnknownStep {
                value: value.to_owned(),
            })
    }
}

/// A subject family: the second token of every subject, `connector.<family>.…`.
///
/// Each family is the unit of stream and consumer filters; see
/// [`Family::filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `connector.validate.<tenant>.<connection>`
    Validate,
    /// `connector.save.<tenant>.<connection>`
    Save,
    /// `connector.sync.<tenant>.<connection>`
    Sync,
    /// `connector.status.<tenant>.<connection>`
    Status,
    /// `connector.dlq.<step>.<tenant>.<connection>`: messages a step gave up on.
    Dlq,
    /// `connector.schedule.<tenant>.<connection>`: scheduled-sync definitions,
    /// outside every worker's filter.
    Schedule,
    /// `connector.health.<tenant>.<connection>`: a connection became
    /// degraded or recovered; for operators' alerts, consumed by no step.
    Health,
}

impl Family {
    /// Every family.
    pub const ALL: [Self; 7] = [
        Self::Validate,
        Self::Save,
        Self::Sync,
        Self::Status,
        Self::Dlq,
        Self::Schedule,
        Self::Health,
    ];

    /// The subject token.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Save => "save",
            Self::Sync => "sync",
            Self::Status => "status",
            Self::Dlq => "dlq",
            Self::Schedule => "schedule",
            Self::Health => "health",
        }
    }

    /// The filter matching every subject of the family, such as
    /// [`subject::VALIDATE_ALL`].
    pub const fn filter(self) -> &'static str {
        match self {
            Self::Validate => subject::VALIDATE_ALL,
            Self::Save => subject::SAVE_ALL,
            Self::Sync => subject::SYNC_ALL,
            Self::Status => subject::STATUS_ALL,
            Self::Dlq => subject::DLQ_ALL,
            Self::Schedule => subject::SCHEDULE_ALL,
            Self::Health => subject::HEALTH_ALL,
        }
    }
}

impl From<Step> for Family {
    /// See [`Step::family`].
    fn from(step: Step) -> Self {
        step.family()
    }
}

impl Family {
    /// The step whose subjects the family holds, named by its token: `None`
    /// for the dead-letter, schedule and health families.
    pub const fn own_step(self) -> Option<Step> {
        match self {
            Self::Validate => Some(Step::Validate),
            Self::Save => Some(Step::Save),
            Self::Sync => Some(Step::Sync),
            Self::Status => Some(Step::Status),
            Self::Dlq | Self::Schedule | Self::Health => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_from_their_own_names() {
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>().unwrap(), step);
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::json!(step.as_str())
            );
        }
    }

    #[test]
    fn unknown_steps_are_refused() {
        let err = "Validate".parse::<Step>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown step \"Validate\"; expected validate, save, sync, status, meter or webhook"
        );
    }

    #[test]
    fn every_step_consumes_a_family_whose_own_step_is_a_step_that_names_it() {
        for step in Step::ALL {
            let own = step.family().own_step().unwrap();
            assert_eq!(own.family(), step.family(), "{step}");
        }
        assert_eq!(Step::Meter.family(), Family::Status);
    }

    #[test]
    fn every_family_filter_is_its_token_followed_by_a_tail_wildcard() {
        for family in Family::ALL {
            assert_eq!(family.filter(), format!("connector.{}.>", family.as_str()));
        }
    }
}
