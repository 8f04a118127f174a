//! What a chaos scenario counted, as JSON, and the checks that fail it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::Size;

/// One connection that did not end as it should, and where it stopped.
#[derive(Debug, Serialize)]
pub(crate) struct Lost {
    pub(crate) tenant: String,
    pub(crate) connection: String,
    /// The last status seen on the status stream, with its reason.
    pub(crate) last_status: String,
    /// The connection's row in PostgreSQL, as a dashboard lists it.
    pub(crate) stored_status: String,
    /// Dead letters filed under the connection, by subject.
    pub(crate) dead_letters: BTreeMap<String, u64>,
    /// Records stored against the records expected.
    pub(crate) records: (u64, u64),
}

/// The report of one scenario. Printed as one JSON line (and written to
/// `<target>/tmp/chaos/<scenario>.json`); [`Report::finish`] fails the
/// test when anything was lost, duplicated or dead-lettered.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) size: Size,
    pub(crate) chains_started: usize,
    pub(crate) chains_completed: usize,
    pub(crate) lost: Vec<Lost>,
    pub(crate) records_expected: u64,
    pub(crate) records_stored: u64,
    /// Records stored beyond what the provider has.
    pub(crate) duplicated_records: u64,
    /// Records the provider has that were not stored.
    pub(crate) missing_records: u64,
    /// `retrying` statuses published: transient failures retried later.
    pub(crate) retries: u64,
    pub(crate) dead_letters: u64,
    pub(crate) duration_secs: f64,
    /// What the scenario measured besides.
    #[serde(flatten)]
    pub(crate) extra: BTreeMap<&'static str, Value>,
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    failures: Vec<String>,
}

impl Report {
    pub(crate) fn new(scenario: &'static str, size: Size) -> Self {
        Self {
            scenario,
            size,
            chains_started: 0,
            chains_completed: 0,
            lost: Vec::new(),
            records_expected: 0,
            records_stored: 0,
            duplicated_records: 0,
            missing_records: 0,
            retries: 0,
            dead_letters: 0,
            duration_secs: 0.0,
            extra: BTreeMap::new(),
            started: Instant::now(),
            failures: Vec::new(),
        }
    }

    /// Records a measurement of the scenario's own.
    pub(crate) fn set(&mut self, key: &'static str, value: impl Serialize) {
        self.extra
            .insert(key, serde_json::to_value(value).expect("a JSON value"));
    }

    /// Fails the scenario with `why` unless `holds`.
    pub(crate) fn check(&mut self, holds: bool, why: impl Into<String>) {
        if !holds {
            self.failures.push(why.into());
        }
    }

    /// Prints and writes the report, then fails the test if any check did,
    /// or anything was lost, duplicated, missing or dead-lettered.
    pub(crate) fn finish(mut self) {
        self.duration_secs = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        let lost = self.lost.len();
        self.check(lost == 0, format!("{lost} chains did not complete"));
        self.check(
            self.duplicated_records == 0,
            format!("{} records stored twice", self.duplicated_records),
        );
        self.check(
            self.missing_records == 0,
            format!("{} records missing", self.missing_records),
        );
        self.check(
            self.dead_letters == 0,
            format!("{} dead letters", self.dead_letters),
        );
        let json = serde_json::to_string(&self).expect("the report serialises");
        println!("{json}");
        let dir = report_dir();
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join(format!("{}.json", self.scenario)), &json);
        }
        assert!(
            self.failures.is_empty(),
            "chaos scenario {} failed: {}\n{}",
            self.scenario,
            self.failures.join("; "),
            serde_json::to_string_pretty(&self).unwrap_or(json),
        );
    }
}

/// Where reports go: `FLEET_CHAOS_REPORT_DIR`, else `<target>/tmp/chaos`.
#[expect(
    clippy::disallowed_methods,
    reason = "FLEET_CHAOS_REPORT_DIR is a switch of these tests, not configuration"
)]
fn report_dir() -> PathBuf {
    std::env::var_os("FLEET_CHAOS_REPORT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos"),
        PathBuf::from,
    )
}
