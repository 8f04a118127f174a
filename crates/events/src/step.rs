use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ParseError, subject};

/// A step of the connection pipeline: validate -> save -> sync, with status
/// reports from each. Each step has its own subjects and its own workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Check staged credentials against the provider.
    Validate,
    /// Promote the staged secret in Vault and record the connection.
    Save,
    /// Page through the provider's API and store its records.
    Sync,
    /// Persist a status change and fan it out to dashboards.
    Status,
}

impl Step {
    /// Every step, in pipeline order.
    pub const ALL: [Self; 4] = [Self::Validate, Self::Save, Self::Sync, Self::Status];

    /// The lowercase name, as in subjects and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Save => "save",
            Self::Sync => "sync",
            Self::Status => "status",
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
}

impl Family {
    /// Every family.
    pub const ALL: [Self; 6] = [
        Self::Validate,
        Self::Save,
        Self::Sync,
        Self::Status,
        Self::Dlq,
        Self::Schedule,
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
        }
    }
}

impl From<Step> for Family {
    fn from(step: Step) -> Self {
        match step {
            Step::Validate => Self::Validate,
            Step::Save => Self::Save,
            Step::Sync => Self::Sync,
            Step::Status => Self::Status,
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
            "unknown step \"Validate\"; expected validate, save, sync or status"
        );
    }

    #[test]
    fn every_family_filter_is_its_token_followed_by_a_tail_wildcard() {
        for family in Family::ALL {
            assert_eq!(family.filter(), format!("connector.{}.>", family.as_str()));
        }
    }
}
