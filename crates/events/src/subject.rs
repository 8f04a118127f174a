//! NATS subject names.
//!
//! Every subject is `connector.<family>.<tenant>.<connection>`, except dead
//! letters, which add the failing step: `connector.dlq.<step>.<tenant>.<connection>`.
//! The builders take only [`TenantId`] and [`ConnectionId`], whose alphabet
//! has no `.`, `*`, `>` or whitespace, so every built subject has a fixed
//! number of tokens and no wildcard. Putting the tenant in a token lets
//! NATS permissions and consumer filters isolate tenants
//! ([`status_for_tenant`]).
//!
//! [`parse`] goes the other way, for a runtime that must address a dead
//! letter for a message it could not decode.

use crate::{ConnectionId, Family, ParseError, Step, TenantId};

/// Every validate request.
pub const VALIDATE_ALL: &str = "connector.validate.>";
/// Every save request.
pub const SAVE_ALL: &str = "connector.save.>";
/// Every sync request.
pub const SYNC_ALL: &str = "connector.sync.>";
/// Every status change.
pub const STATUS_ALL: &str = "connector.status.>";
/// Every dead letter, of every step.
pub const DLQ_ALL: &str = "connector.dlq.>";
/// Every scheduled-sync definition.
pub const SCHEDULE_ALL: &str = "connector.schedule.>";
/// Every health change.
pub const HEALTH_ALL: &str = "connector.health.>";

/// `connector.validate.<tenant>.<connection>`
pub fn validate(tenant: &TenantId, connection: &ConnectionId) -> String {
    for_step(Step::Validate, tenant, connection)
}

/// `connector.save.<tenant>.<connection>`
pub fn save(tenant: &TenantId, connection: &ConnectionId) -> String {
    for_step(Step::Save, tenant, connection)
}

/// `connector.sync.<tenant>.<connection>`
pub fn sync(tenant: &TenantId, connection: &ConnectionId) -> String {
    for_step(Step::Sync, tenant, connection)
}

/// `connector.status.<tenant>.<connection>`
pub fn status(tenant: &TenantId, connection: &ConnectionId) -> String {
    for_step(Step::Status, tenant, connection)
}

/// `connector.<family>.<tenant>.<connection>`: a subject `step` consumes,
/// in its [`family`](Step::family) (the meter step's are status subjects).
pub fn for_step(step: Step, tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("connector.{}.{tenant}.{connection}", step.family().as_str())
}

/// `connector.dlq.<step>.<tenant>.<connection>`: where `step` puts messages it gave up on.
pub fn dlq(step: Step, tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("connector.dlq.{step}.{tenant}.{connection}")
}

/// `connector.schedule.<tenant>.<connection>`: the connection's scheduled-sync
/// definition.
///
/// The definition is a `connector.sync.requested` envelope stored with
/// JetStream message-schedule headers; the server republishes it on
/// [`sync`]`(tenant, connection)`. The family sits outside every worker's
/// filter, so the sync worker never consumes the definition itself.
pub fn schedule(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!("connector.schedule.{tenant}.{connection}")
}

/// `connector.health.<tenant>.<connection>`: the connection became degraded
/// or recovered.
pub fn health(tenant: &TenantId, connection: &ConnectionId) -> String {
    format!(
        "connector.{}.{tenant}.{connection}",
        Family::Health.as_str()
    )
}

/// `connector.status.<tenant>.>`: every status change of one tenant, for a
/// dashboard session that must see nothing else.
pub fn status_for_tenant(tenant: &TenantId) -> String {
    format!("connector.status.{tenant}.>")
}

/// What a subject built by this module addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSubject {
    /// The family (second token).
    pub family: Family,
    /// The step the subject concerns: the family's own step
    /// ([`Family::own_step`]; [`Step::Status`] for status subjects, which
    /// the meter step reads too), the failed step for [`Family::Dlq`], and
    /// [`Step::Sync`] for [`Family::Schedule`], whose definitions produce
    /// sync requests.
    pub step: Step,
    /// The tenant token.
    pub tenant: TenantId,
    /// The connection token.
    pub connection: ConnectionId,
}

/// Recovers family, step, tenant and connection from a concrete subject.
///
/// # Errors
///
/// The subject does not have the shape of one this module builds, names an
/// unknown step, or has an invalid tenant or connection token (wildcards
/// included).
pub fn parse(subject: &str) -> Result<ParsedSubject, ParseError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let (family, step, tenant, connection) = match tokens.as_slice() {
        ["connector", "dlq", step, tenant, connection] => {
            (Family::Dlq, step.parse()?, tenant, connection)
        }
        ["connector", "schedule", tenant, connection] => {
            (Family::Schedule, Step::Sync, tenant, connection)
        }
        ["connector", token, tenant, connection] => {
            let Some((family, step)) = Family::ALL
                .into_iter()
                .filter(|family| family.as_str() == *token)
                .find_map(|family| Some((family, family.own_step()?)))
            else {
                return Err(ParseError::Subject {
                    subject: subject.to_owned(),
                });
            };
            (family, step, tenant, connection)
        }
        _ => {
            return Err(ParseError::Subject {
                subject: subject.to_owned(),
            });
        }
    };
    Ok(ParsedSubject {
        family,
        step,
        tenant: TenantId::parse(tenant)?,
        connection: ConnectionId::parse(connection)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, ConnectionId) {
        (
            TenantId::parse("acme").unwrap(),
            ConnectionId::parse("c-1").unwrap(),
        )
    }

    #[test]
    fn step_subjects_put_the_step_tenant_and_connection_in_that_order() {
        let (t, c) = ids();
        assert_eq!(validate(&t, &c), "connector.validate.acme.c-1");
        assert_eq!(save(&t, &c), "connector.save.acme.c-1");
        assert_eq!(sync(&t, &c), "connector.sync.acme.c-1");
        assert_eq!(status(&t, &c), "connector.status.acme.c-1");
        for step in Step::ALL {
            let family = step.family().as_str();
            assert_eq!(
                for_step(step, &t, &c),
                format!("connector.{family}.acme.c-1")
            );
        }
        assert_eq!(for_step(Step::Meter, &t, &c), "connector.status.acme.c-1");
    }

    #[test]
    fn dead_letter_and_schedule_subjects_have_their_own_family() {
        let (t, c) = ids();
        assert_eq!(dlq(Step::Sync, &t, &c), "connector.dlq.sync.acme.c-1");
        assert_eq!(schedule(&t, &c), "connector.schedule.acme.c-1");
        assert_eq!(status_for_tenant(&t), "connector.status.acme.>");
    }

    #[test]
    fn built_subjects_parse_back_to_their_parts() {
        let (t, c) = ids();
        for step in Step::ALL {
            let parsed = parse(&for_step(step, &t, &c)).unwrap();
            assert_eq!(
                parsed,
                ParsedSubject {
                    family: step.into(),
                    step: step.family().own_step().unwrap(),
                    tenant: t.clone(),
                    connection: c.clone()
                }
            );
            let parsed = parse(&dlq(step, &t, &c)).unwrap();
            assert_eq!((parsed.family, parsed.step), (Family::Dlq, step));
        }
        let parsed = parse(&schedule(&t, &c)).unwrap();
        assert_eq!((parsed.family, parsed.step), (Family::Schedule, Step::Sync));
    }

    #[test]
    fn subjects_of_other_shapes_are_refused() {
        for subject in [
            "",
            "connector",
            "connector.validate.acme",
            "connector.validate.acme.c-1.extra",
            "other.validate.acme.c-1",
            "connector.dlq.acme.c-1",
            "connector.unknown.acme.c-1",
            "connector.meter.acme.c-1",
        ] {
            assert!(
                matches!(parse(subject), Err(ParseError::Subject { .. })),
                "{subject:?} was not refused as a subject"
            );
        }
    }

    #[test]
    fn wildcard_and_bad_tokens_are_refused_with_the_token_reason() {
        assert!(matches!(
            parse("connector.validate.*.c-1"),
            Err(ParseError::InvalidChar { ch: '*', .. })
        ));
        assert!(matches!(
            parse(VALIDATE_ALL),
            Err(ParseError::Subject { .. })
        ));
        assert!(matches!(
            parse("connector.dlq.nope.acme.c-1"),
            Err(ParseError::UnknownStep { .. })
        ));
        assert!(matches!(
            parse("connector.sync..c-1"),
            Err(ParseError::Empty { .. })
        ));
    }
}
