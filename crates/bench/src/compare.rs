//! This revision against a baseline revision, measured in the same run:
//! `scripts/bench --baseline <rev>` runs each scenario with both builds,
//! one after the other, and [`compare`] puts their reports side by side
//! with the ratio of each headline figure (this run / baseline).
//!
//! The reports are read as JSON rather than as [`Report`](crate::Report):
//! the baseline's `fleet bench` may be older, with scenarios and fields
//! this one has and it lacks. Those are listed as missing, not treated as
//! failures.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::report::{Target, round3};

/// The headline figures of the chain scenarios (raw, noop, full,
/// sync-only), as paths into a scenario's report.
const CHAIN_METRICS: &[&str] = &[
    "throughput.chains_per_s",
    "throughput.latency_ms.p50",
    "throughput.latency_ms.p99",
    "alone.latency_ms.p50",
    "alone.latency_ms.p99",
    "paced.chains_per_s",
    "paced.latency_ms.p50",
    "paced.latency_ms.p99",
    "parts.vault.chains_per_s",
    "parts.postgres.chains_per_s",
    "parts.bound_chains_per_s",
    "postgres_alone.chains_per_s",
    "throughput.work.vault_requests_per_chain",
    "throughput.work.postgres_statements_per_chain",
    "throughput.work.postgres_ms_per_chain",
];

/// Maps of figures whose every key is compared, such as each process's
/// CPU per chain.
const CHAIN_METRIC_MAPS: &[&str] = &["throughput.cpu.ms_per_chain"];

/// The headline figures of the bridge scenarios.
const BRIDGE_METRICS: &[&str] = &[
    "deliveries_per_s",
    "latency_ms.p50",
    "latency_ms.p99",
    "missed",
    "connect.sessions_per_s",
    "bridge.peak_rss_mb",
    "bridge.cpu_ms_per_1000_deliveries",
];

/// The headline figures of the large-account sync scenarios.
const SYNC_METRICS: &[&str] = &[
    "full.seconds",
    "full.records_per_s",
    "incremental.seconds",
    "incremental.records_per_s",
];

/// The reports of one build: each `fleet bench` run's JSON.
#[derive(Debug, Clone)]
pub struct Side {
    /// The git revision it was built from.
    pub revision: String,
    /// Its reports, one per run.
    pub reports: Vec<Value>,
}

/// What `scripts/bench --baseline` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// This revision's reports, merged into one.
    pub current: Measured,
    /// The baseline revision's reports, merged into one.
    pub baseline: Measured,
    /// This run over the baseline, by scenario and figure (a path into the
    /// scenario's report). Above 1 is more: for latencies, CPU and
    /// requests per chain that is worse.
    pub ratios: BTreeMap<String, BTreeMap<String, f64>>,
    /// Scenarios this revision measured and the baseline did not, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_scenarios: BTreeMap<String, String>,
    /// Figures this revision reports and the baseline does not, by scenario.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_figures: BTreeMap<String, Vec<String>>,
    /// Options of this run that the baseline does not have, left out of its
    /// runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline_without_options: Vec<String>,
    /// The targets that compare the two.
    pub targets: Vec<Target>,
}

/// One build's merged report.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The git revision.
    pub revision: String,
    /// Its runs' reports in one: every scenario, every target.
    pub report: Value,
}

/// Puts `current` and `baseline` side by side. `skipped` names the
/// scenarios the baseline could not run and why; `without_options` the
/// options left out of its runs.
pub fn compare(
    current: Side,
    baseline: Side,
    skipped: BTreeMap<String, String>,
    without_options: Vec<String>,
) -> Comparison {
    let current_report = merge(&current.reports);
    let baseline_report = merge(&baseline.reports);
    let empty = Map::new();
    let ours = scenarios(&current_report).unwrap_or(&empty);
    let theirs = scenarios(&baseline_report).unwrap_or(&empty);
    let mut ratios = BTreeMap::new();
    let mut missing_scenarios = BTreeMap::new();
    let mut missing_figures = BTreeMap::new();
    for (name, report) in ours {
        let Some(base) = theirs.get(name) else {
            let reason = skipped
                .get(&cli_name(name))
                .cloned()
                .unwrap_or_else(|| "the baseline's report has no such scenario".to_owned());
            missing_scenarios.insert(name.clone(), reason);
            continue;
        };
        let (figures, missing) = compare_scenario(name, report, base);
        if !figures.is_empty() {
            ratios.insert(name.clone(), figures);
        }
        if !missing.is_empty() {
            missing_figures.insert(name.clone(), missing);
        }
    }
    for (scenario, reason) in skipped {
        missing_scenarios.entry(scenario).or_insert(reason);
    }
    let targets = ratios
        .get("full")
        .and_then(|full| full.get("throughput.chains_per_s"))
        .map(|&ratio| {
            vec![Target::at_least(
                "(b) full chains/s over the baseline's >= 2",
                ratio,
                2.0,
            )]
        })
        .unwrap_or_default();
    Comparison {
        current: Measured {
            revision: current.revision,
            report: current_report,
        },
        baseline: Measured {
            revision: baseline.revision,
            report: baseline_report,
        },
        ratios,
        missing_scenarios,
        missing_figures,
        baseline_without_options: without_options,
        targets,
    }
}

fn scenarios(report: &Value) -> Option<&Map<String, Value>> {
    report.get("scenarios").and_then(Value::as_object)
}

/// The scenario's name on the command line: the report keeps both sync
/// scenarios under `sync`.
fn cli_name(report_key: &str) -> String {
    if report_key == "sync" {
        "sync-incremental".to_owned()
    } else {
        report_key.to_owned()
    }
}

/// The ratios of the scenario's figures, and the figures `base` lacks.
fn compare_scenario(
    name: &str,
    ours: &Value,
    base: &Value,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let (metrics, maps): (&[&str], &[&str]) = if name.starts_with("bridge") {
        (BRIDGE_METRICS, &[])
    } else if name == "sync" {
        (SYNC_METRICS, &[])
    } else {
        (CHAIN_METRICS, CHAIN_METRIC_MAPS)
    };
    let mut paths: Vec<String> = metrics.iter().map(|&p| p.to_owned()).collect();
    for &map in maps {
        if let Some(keys) = lookup(ours, map).and_then(Value::as_object) {
            paths.extend(keys.keys().map(|key| format!("{map}.{key}")));
        }
    }
    let mut ratios = BTreeMap::new();
    let mut missing = Vec::new();
    for path in paths {
        let Some(now) = lookup(ours, &path).and_then(Value::as_f64) else {
            continue;
        };
        match lookup(base, &path).and_then(Value::as_f64) {
            Some(then) if then != 0.0 => {
                ratios.insert(path, round3(now / then));
            }
            // Zero in the baseline: no ratio, and nothing missing.
            Some(_) => {}
            None => missing.push(path),
        }
    }
    (ratios, missing)
}

/// The value at a dotted `path`, such as `throughput.latency_ms.p50`.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

/// One report of several runs' reports: the machine and NATS version of
/// the first, every run's scenarios and targets, and their ratios,
/// with those across scenarios (to the raw chain) computed anew.
fn merge(reports: &[Value]) -> Value {
    let mut merged = Map::new();
    let mut scenarios = Map::new();
    let mut ratios = Map::new();
    let mut targets = Vec::new();
    for report in reports {
        for key in ["machine", "nats_server"] {
            if let Some(value) = report.get(key) {
                merged.entry(key).or_insert_with(|| value.clone());
            }
        }
        if let Some(each) = report.get("scenarios").and_then(Value::as_object) {
            scenarios.extend(each.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(each) = report.get("ratios").and_then(Value::as_object) {
            ratios.extend(each.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(each) = report.get("targets").and_then(Value::as_array) {
            targets.extend(each.iter().cloned());
        }
    }
    let rate = |name: &str| {
        scenarios
            .get(name)
            .and_then(|s| lookup(s, "throughput.chains_per_s"))
            .and_then(Value::as_f64)
    };
    if let Some(raw) = rate("raw").filter(|&raw| raw > 0.0) {
        for (name, key) in [("noop", "noop_over_raw"), ("full", "full_over_raw")] {
            if let Some(rate) = rate(name) {
                ratios.insert(key.to_owned(), Value::from(round3(rate / raw)));
            }
        }
    }
    merged.insert("scenarios".to_owned(), Value::Object(scenarios));
    merged.insert("ratios".to_owned(), Value::Object(ratios));
    merged.insert("targets".to_owned(), Value::Array(targets));
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(chains_per_s: f64, p50: f64) -> Value {
        json!({ "chains_per_s": chains_per_s, "latency_ms": { "p50": p50, "p99": p50 * 2.0 } })
    }

    fn side(revision: &str, reports: Vec<Value>) -> Side {
        Side {
            revision: revision.to_owned(),
            reports,
        }
    }

    #[test]
    fn ratios_are_this_run_over_the_baseline() {
        let current = side(
            "new",
            vec![
                json!({ "machine": { "cores": 2 }, "scenarios": { "raw": { "throughput": run(1000.0, 10.0) } } }),
                json!({ "scenarios": { "full": {
                    "throughput": {
                        "chains_per_s": 400.0,
                        "cpu": { "ms_per_chain": { "fleet": 1.0, "vault": 2.0 } },
                        "work": { "vault_requests_per_chain": 2.0 },
                    },
                    "alone": run(1.0, 5.0),
                } } }),
            ],
        );
        let baseline = side(
            "old",
            vec![
                json!({ "scenarios": { "raw": { "throughput": run(500.0, 20.0) } } }),
                json!({ "scenarios": { "full": {
                    "throughput": {
                        "chains_per_s": 200.0,
                        "cpu": { "ms_per_chain": { "fleet": 2.0, "vault": 0.0 } },
                    },
                    "alone": run(1.0, 10.0),
                } } }),
            ],
        );
        let comparison = compare(current, baseline, BTreeMap::new(), Vec::new());
        let raw = &comparison.ratios["raw"];
        assert_eq!(raw["throughput.chains_per_s"], 2.0);
        assert_eq!(raw["throughput.latency_ms.p50"], 0.5);
        let full = &comparison.ratios["full"];
        assert_eq!(full["throughput.chains_per_s"], 2.0);
        assert_eq!(full["alone.latency_ms.p50"], 0.5);
        assert_eq!(full["throughput.cpu.ms_per_chain.fleet"], 0.5);
        // A zero in the baseline gives no ratio and is not missing.
        assert!(!full.contains_key("throughput.cpu.ms_per_chain.vault"));
        assert_eq!(
            comparison.missing_figures["full"],
            ["throughput.work.vault_requests_per_chain"]
        );
        assert!(comparison.missing_scenarios.is_empty());
        assert_eq!(comparison.targets.len(), 1);
        assert!(comparison.targets[0].met);
        assert_eq!(comparison.current.revision, "new");
        assert_eq!(
            comparison.current.report["ratios"]["full_over_raw"],
            json!(0.4)
        );
        assert_eq!(comparison.current.report["machine"]["cores"], json!(2));
    }

    #[test]
    fn scenarios_the_baseline_lacks_are_missing_not_failures() {
        let current = side(
            "new",
            vec![
                json!({ "scenarios": { "sync-only": { "throughput": run(900.0, 3.0) } } }),
                json!({ "scenarios": { "sync": { "full": { "seconds": 10.0 } } } }),
            ],
        );
        let baseline = side(
            "old",
            vec![json!({ "scenarios": { "sync": { "full": { "seconds": 20.0 } } } })],
        );
        let skipped = BTreeMap::from([(
            "sync-only".to_owned(),
            "the baseline's fleet bench has no scenario sync-only".to_owned(),
        )]);
        let comparison = compare(
            current,
            baseline,
            skipped,
            vec!["--sync-only-connections".to_owned()],
        );
        assert_eq!(
            comparison.missing_scenarios["sync-only"],
            "the baseline's fleet bench has no scenario sync-only"
        );
        assert_eq!(comparison.ratios["sync"]["full.seconds"], 0.5);
        assert!(!comparison.ratios.contains_key("sync-only"));
        assert!(comparison.targets.is_empty());
        let printed = serde_json::to_value(&comparison).unwrap();
        assert_eq!(
            printed["baseline_without_options"],
            json!(["--sync-only-connections"])
        );
    }
}
