//! What the chains cost the servers, counted by the servers themselves:
//! the requests OpenBao handled (its telemetry, read from `sys/metrics`)
//! and the statements PostgreSQL executed (`pg_stat_statements`), read
//! before and after a run and divided by the chains the run ended.
//!
//! Either counter is left out of the report, with a warning, when its
//! server does not offer it: OpenBao needs a `telemetry` stanza with
//! `prometheus_retention_time` and a token that may read `sys/metrics`,
//! PostgreSQL needs `shared_preload_libraries = 'pg_stat_statements'` and
//! a role that may create the extension. `scripts/bench` starts both so.

use std::collections::BTreeMap;

use secrecy::ExposeSecret as _;
use sqlx::Connection as _;
use tokio::sync::Mutex;
use tracing::warn;

use crate::FullServices;
use crate::report::{Work, round3};

/// OpenBao's count of the requests its core handled, of every kind. Its
/// own `sys/metrics` and `sys/health` requests do not count.
const VAULT_TOTAL: &str = "vault_core_handle_request_count";
/// OpenBao's per-route counts: `vault_route_<operation>_<mount>_count`,
/// the mount's slashes written as underscores (`secret/` is `secret_`).
const VAULT_ROUTE: (&str, &str) = ("vault_route_", "__count");

/// The statements of the current database, except the counter's own reads.
const STATEMENTS: &str = "SELECT query, calls, \
                          (total_exec_time * 1000)::bigint, (total_plan_time * 1000)::bigint \
                          FROM pg_stat_statements \
                          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                          AND query NOT LIKE '%pg_stat_statements%'";

/// How much of a statement's text names it in the report.
const STATEMENT_NAME_CHARS: usize = 72;

/// Reads the servers' counters.
#[derive(Debug)]
pub(crate) struct Counters {
    vault: Option<VaultMetrics>,
    postgres: Option<Mutex<sqlx::PgConnection>>,
}

#[derive(Debug)]
struct VaultMetrics {
    http: reqwest::Client,
    url: String,
    token: secrecy::SecretString,
    namespace: Option<String>,
}

/// The counters at one instant; `None` where they could not be read.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    vault: Option<Counts>,
    postgres: Option<Statements>,
}

/// PostgreSQL's statement counters: calls, and the microseconds spent
/// executing and planning, each by statement.
#[derive(Debug, Default, Clone, PartialEq)]
struct Statements {
    calls: Counts,
    /// Execution and planning together.
    micros: Counts,
    /// Planning alone (0 unless `pg_stat_statements.track_planning` is on).
    plan_micros: Counts,
}

/// A total, and what it is made of.
#[derive(Debug, Default, Clone, PartialEq)]
struct Counts {
    total: u64,
    by_kind: BTreeMap<String, u64>,
}

impl Counters {
    /// Counters of the servers of `services`, each checked by reading it
    /// once; one that cannot be read is left out, with a warning.
    pub(crate) async fn connect(services: &FullServices) -> Self {
        let vault = match VaultMetrics::new(&services.vault) {
            Some(metrics) => match metrics.read().await {
                Ok(_) => Some(metrics),
                Err(e) => {
                    warn!(
                        error.message = %e,
                        "OpenBao's request counters cannot be read, so the report leaves Vault \
                         requests out; it needs telemetry with prometheus_retention_time."
                    );
                    None
                }
            },
            None => {
                warn!(
                    "Vault requests are counted only with a token (FLEET_VAULT__AUTH__METHOD=token) \
                     that may read sys/metrics; the report leaves them out."
                );
                None
            }
        };
        let postgres = match statements(services).await {
            Ok(connection) => Some(Mutex::new(connection)),
            Err(e) => {
                warn!(
                    error.message = %e,
                    "PostgreSQL's statement counters cannot be read, so the report leaves its \
                     statements out; it needs shared_preload_libraries = 'pg_stat_statements'."
                );
                None
            }
        };
        Self { vault, postgres }
    }

    /// The counters now.
    pub(crate) async fn sample(&self) -> Sample {
        let vault = match &self.vault {
            Some(metrics) => metrics
                .read()
                .await
                .inspect_err(|e| warn!(error.message = %e, "Cannot read OpenBao's counters."))
                .ok(),
            None => None,
        };
        let postgres = match &self.postgres {
            Some(connection) => read_statements(&mut *connection.lock().await)
                .await
                .inspect_err(
                    |e| warn!(error.message = %e, "Cannot read PostgreSQL's statement counters."),
                )
                .ok(),
            None => None,
        };
        Sample { vault, postgres }
    }
}

impl Sample {
    /// What happened between `self` and `after`, per chain of `chains`;
    /// `None` when neither counter was read at both ends.
    pub(crate) fn per_chain(&self, after: &Self, chains: u64) -> Option<Work> {
        let vault = Counts::between(self.vault.as_ref(), after.vault.as_ref());
        let (before_pg, after_pg) = (self.postgres.as_ref(), after.postgres.as_ref());
        let postgres = Counts::between(before_pg.map(|s| &s.calls), after_pg.map(|s| &s.calls));
        let micros = Counts::between(before_pg.map(|s| &s.micros), after_pg.map(|s| &s.micros));
        let plan = Counts::between(
            before_pg.map(|s| &s.plan_micros),
            after_pg.map(|s| &s.plan_micros),
        );
        if vault.is_none() && postgres.is_none() {
            return None;
        }
        let per = |n: u64| round3(n as f64 / chains.max(1) as f64);
        let ms_per = |micros: u64| round3(micros as f64 / 1000.0 / chains.max(1) as f64);
        let split = |counts: &Option<Counts>| {
            counts
                .iter()
                .flat_map(|c| &c.by_kind)
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| (kind.clone(), per(*n)))
                .collect()
        };
        Some(Work {
            chains,
            vault_requests_per_chain: vault.as_ref().map(|c| per(c.total)),
            vault_requests_by_route: split(&vault),
            postgres_statements_per_chain: postgres.as_ref().map(|c| per(c.total)),
            postgres_statements_by_text: split(&postgres),
            postgres_ms_per_chain: micros.as_ref().map(|c| ms_per(c.total)),
            postgres_plan_ms_per_chain: plan.as_ref().map(|c| ms_per(c.total)),
            postgres_ms_by_text: micros
                .iter()
                .flat_map(|c| &c.by_kind)
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| (kind.clone(), ms_per(*n)))
                .collect(),
        })
    }
}

impl Counts {
    /// `after - before`, kind by kind; counters only grow, so a kind that
    /// shrank was reset and counts as 0.
    fn between(before: Option<&Self>, after: Option<&Self>) -> Option<Self> {
        let (before, after) = (before?, after?);
        let by_kind = after
            .by_kind
            .iter()
            .map(|(kind, &n)| {
                let was = before.by_kind.get(kind).copied().unwrap_or(0);
                (kind.clone(), n.saturating_sub(was))
            })
            .collect();
        Some(Self {
            total: after.total.saturating_sub(before.total),
            by_kind,
        })
    }
}

impl VaultMetrics {
    fn new(config: &fleet_secrets::Config) -> Option<Self> {
        let fleet_secrets::Auth::Token { token } = &config.auth else {
            return None;
        };
        Some(Self {
            http: reqwest::Client::new(),
            url: format!(
                "{}/v1/sys/metrics?format=prometheus",
                config.addr.trim_end_matches('/')
            ),
            token: token.clone(),
            namespace: config.namespace.clone(),
        })
    }

    async fn read(&self) -> Result<Counts, reqwest::Error> {
        let mut request = self
            .http
            .get(&self.url)
            .header("X-Vault-Token", self.token.expose_secret());
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let text = request.send().await?.error_for_status()?.text().await?;
        Ok(vault_counts(&text))
    }
}

/// The request counters in OpenBao's Prometheus text: the total, and each
/// route's count keyed `<operation> <mount>`, such as `read secret`.
fn vault_counts(text: &str) -> Counts {
    let mut counts = Counts::default();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        // Samples of one name with different labels add up.
        let name = name.split('{').next().unwrap_or(name);
        // Counts are whole numbers, though the format may write them as floats.
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        if name == VAULT_TOTAL {
            counts.total += value;
        } else if let Some(route) = name
            .strip_prefix(VAULT_ROUTE.0)
            .and_then(|rest| rest.strip_suffix(VAULT_ROUTE.1))
        {
            let (operation, mount) = route.split_once('_').unwrap_or((route, ""));
            *counts
                .by_kind
                .entry(format!("{operation} {mount}").trim_end().to_owned())
                .or_default() += value;
        }
    }
    counts
}

/// A connection to the database of `services`, with `pg_stat_statements`
/// created and read once.
async fn statements(services: &FullServices) -> Result<sqlx::PgConnection, sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(services.database.url.expose_secret()).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut connection)
        .await?;
    read_statements(&mut connection).await?;
    Ok(connection)
}

async fn read_statements(connection: &mut sqlx::PgConnection) -> Result<Statements, sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64)> =
        sqlx::query_as(STATEMENTS).fetch_all(connection).await?;
    Ok(statements_of(&rows))
}

/// The counters of `pg_stat_statements` rows: text, calls, execution and
/// planning microseconds.
fn statements_of(rows: &[(String, i64, i64, i64)]) -> Statements {
    Statements {
        calls: statement_counts(rows.iter().map(|(q, calls, ..)| (q.as_str(), *calls))),
        micros: statement_counts(
            rows.iter()
                .map(|(q, _, exec, plan)| (q.as_str(), exec.saturating_add(*plan))),
        ),
        plan_micros: statement_counts(rows.iter().map(|(q, _, _, plan)| (q.as_str(), *plan))),
    }
}

/// A count per statement (calls, or microseconds), keyed by the start of
/// its normalised text (so statements that start alike add up), and their
/// total.
fn statement_counts<'a>(rows: impl IntoIterator<Item = (&'a str, i64)>) -> Counts {
    let mut counts = Counts::default();
    for (query, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        counts.total += n;
        *counts.by_kind.entry(statement_name(query)).or_default() += n;
    }
    counts
}

/// The statement's text on one line, its spaces collapsed, cut at
/// [`STATEMENT_NAME_CHARS`] characters.
fn statement_name(query: &str) -> String {
    let words = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= STATEMENT_NAME_CHARS {
        return words;
    }
    let cut: String = words.chars().take(STATEMENT_NAME_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP vault_core_handle_request vault_core_handle_request
# TYPE vault_core_handle_request summary
vault_core_handle_request{quantile=\"0.5\"} 1.43
vault_core_handle_request_sum 6.79
vault_core_handle_request_count{cluster=\"a\"} 10
vault_core_handle_request_count{cluster=\"b\"} 2
vault_route_create_secret_{quantile=\"0.5\"} 1.34
vault_route_create_secret__sum 1.34
vault_route_create_secret__count 4
vault_route_read_secret__count 7
vault_route_update_auth_token__count 1
vault_audit_log_request_count 5
";

    #[test]
    fn reads_openbao_request_counts_by_route() {
        let counts = vault_counts(METRICS);
        assert_eq!(counts.total, 12);
        assert_eq!(
            counts.by_kind,
            BTreeMap::from([
                ("create secret".to_owned(), 4),
                ("read secret".to_owned(), 7),
                ("update auth_token".to_owned(), 1),
            ])
        );
    }

    #[test]
    fn adds_up_statements_that_start_alike() {
        let long = format!("SELECT {} FROM t", "a, ".repeat(40));
        let (x, y) = (
            format!("{long} WHERE x = $1"),
            format!("{long} WHERE y = $1"),
        );
        let counts = statement_counts([("BEGIN", 3), ("COMMIT", 3), (x.as_str(), 2), (&y, 1)]);
        assert_eq!(counts.total, 9);
        assert_eq!(counts.by_kind["BEGIN"], 3);
        let name = statement_name(&long);
        assert_eq!(name.chars().count(), STATEMENT_NAME_CHARS + 1);
        assert!(name.ends_with('…'));
        assert_eq!(counts.by_kind[&name], 3);
        assert_eq!(
            statement_name("UPDATE  t\n   SET a = $1"),
            "UPDATE t SET a = $1"
        );
    }

    #[test]
    fn divides_what_a_run_added_by_its_chains() {
        let before = Sample {
            vault: Some(vault_counts(METRICS)),
            postgres: Some(statements_of(&[("BEGIN".to_owned(), 10, 500, 0)])),
        };
        let after = Sample {
            vault: Some(vault_counts(
                &METRICS
                    .replace("\"b\"} 2", "\"b\"} 22")
                    .replace("read_secret__count 7", "read_secret__count 27"),
            )),
            postgres: Some(statements_of(&[
                ("BEGIN".to_owned(), 30, 2_500, 0),
                ("COMMIT".to_owned(), 20, 8_000, 1_000),
            ])),
        };
        let work = before.per_chain(&after, 10).unwrap();
        assert_eq!(work.chains, 10);
        assert_eq!(work.vault_requests_per_chain, Some(2.0));
        assert_eq!(
            work.vault_requests_by_route,
            BTreeMap::from([("read secret".to_owned(), 2.0)])
        );
        assert_eq!(work.postgres_statements_per_chain, Some(4.0));
        assert_eq!(
            work.postgres_statements_by_text,
            BTreeMap::from([("BEGIN".to_owned(), 2.0), ("COMMIT".to_owned(), 2.0)])
        );
        // Microseconds become milliseconds per chain: (2,000 + 9,000) / 10.
        assert_eq!(work.postgres_ms_per_chain, Some(1.1));
        assert_eq!(work.postgres_plan_ms_per_chain, Some(0.1));
        assert_eq!(
            work.postgres_ms_by_text,
            BTreeMap::from([("BEGIN".to_owned(), 0.2), ("COMMIT".to_owned(), 0.9)])
        );
    }

    #[test]
    fn leaves_out_a_counter_not_read_at_both_ends() {
        let before = Sample {
            vault: None,
            postgres: Some(statements_of(&[("BEGIN".to_owned(), 1, 0, 0)])),
        };
        let after = Sample {
            vault: Some(vault_counts(METRICS)),
            postgres: Some(statements_of(&[("BEGIN".to_owned(), 3, 0, 0)])),
        };
        let work = before.per_chain(&after, 2).unwrap();
        assert_eq!(work.vault_requests_per_chain, None);
        assert!(work.vault_requests_by_route.is_empty());
        assert_eq!(work.postgres_statements_per_chain, Some(1.0));
        assert!(Sample::default().per_chain(&Sample::default(), 1).is_none());
    }
}
