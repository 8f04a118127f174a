//! `deploy/observability/`: the Grafana dashboard and the Prometheus alert
//! rules ask only for series the fleet exports, and docs/operations.md's
//! metrics table lists every series the code emits. The table is the one
//! list: the dashboard and the rules are checked against it, and it against
//! the `metrics::counter!`, `gauge!` and `histogram!` calls in the crates,
//! so none of the three can drift from the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether a series is a counter, a gauge or a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The series of docs/operations.md's table under "Health, readiness and
/// metrics", by name: every backticked name of a row's first cell, with the
/// row's type.
fn documented() -> BTreeMap<String, Kind> {
    let text = read("docs/operations.md");
    let section = text
        .split("\n## ")
        .find(|section| section.starts_with("Health, readiness and metrics"))
        .expect("docs/operations.md has a section \"Health, readiness and metrics\"");
    let mut series = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (names, kind) = (cells[1], cells[2]);
        let kind = match kind {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            other => panic!("docs/operations.md: unknown series type {other:?} in {line}"),
        };
        for name in names.split('`').skip(1).step_by(2) {
            assert!(
                name.starts_with("fleet_"),
                "docs/operations.md: {name:?} is not a fleet series"
            );
            series.insert(name.to_owned(), kind);
        }
    }
    assert!(
        series.len() >= 20,
        "docs/operations.md's metrics table lists only {series:?}"
    );
    series
}

/// Whether Prometheus exports `name` for one of the documented series: the
/// name itself, or a histogram's `_bucket`, `_sum` or `_count` series.
fn exported(name: &str, documented: &BTreeMap<String, Kind>) -> bool {
    documented.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| documented.get(base) == Some(&Kind::Histogram))
        })
}

/// PromQL words that are not metrics: keywords, and the aggregation
/// operators, which may stand before `by (...)` rather than `(`.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// Series Prometheus itself makes, which rules may use beside the fleet's.
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// The metric names `expr` selects: every identifier that is not inside a
/// string, a label matcher (`{...}`), a range (`[...]`) or a `by` /
/// `without` / `on` / `ignoring` / `group_*` label list, is not a function
/// (followed by `(`), not a keyword and not a number.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // The word before an opening parenthesis, when it takes label names.
    let mut label_list_next = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if label_list_next => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                label_list_next = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let called = chars.get(next) == Some(&'(');
                let lower = word.to_ascii_lowercase();
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&lower.as_str())
                {
                    label_list_next = called;
                } else if !called && !KEYWORDS.contains(&lower.as_str()) {
                    names.insert(word);
                }
            }
            '$' => {
                // A Grafana variable outside a range or matcher: `$__interval`.
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_names_are_read_as_metrics_and_nothing_else() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (step, le) (rate(fleet_step_duration_seconds_bucket{step=~"sync|save"}[$__rate_interval])))
           / on (step) group_left max without (instance) (fleet_consumer_pending) > 1e3 and up{job="x"} == 0"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "fleet_consumer_pending",
            "fleet_step_duration_seconds_bucket",
            "up"
        ]
    );
}

fn dashboard() -> Json {
    serde_json::from_str(&read("deploy/observability/grafana-dashboard.json"))
        .expect("grafana-dashboard.json is JSON")
}

/// Every panel of the dashboard, those inside collapsed rows included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut all = Vec::new();
    for panel in dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels")
    {
        all.push(panel);
        if let Some(nested) = panel.get("panels").and_then(Json::as_array) {
            all.extend(nested);
        }
    }
    all
}

fn alert_rules() -> Vec<Yaml> {
    let rules: Yaml = serde_norway::from_str(&read("deploy/observability/prometheus-alerts.yml"))
        .expect("prometheus-alerts.yml is YAML");
    let groups = rules["groups"].as_sequence().expect("a `groups` list");
    assert!(!groups.is_empty());
    groups
        .iter()
        .flat_map(|group| {
            assert!(
                group["name"].as_str().is_some_and(|name| !name.is_empty()),
                "every group has a name: {group:?}"
            );
            group["rules"]
                .as_sequence()
                .expect("every group has rules")
                .clone()
        })
        .collect()
}

#[test]
fn the_dashboard_has_titled_panels_with_queries_on_the_prometheus_input() {
    let dashboard = dashboard();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|input| input["name"] == "DS_PROMETHEUS" && input["pluginId"] == "prometheus"),
        "the dashboard takes its Prometheus as the DS_PROMETHEUS input"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
        "DS_PROMETHEUS is also a data source variable, for provisioning without import"
    );

    let panels = panels(&dashboard);
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "{title}: duplicate id"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has no target");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                !expr.is_empty(),
                "panel {title:?} has a target without expr"
            );
            assert_eq!(target["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            queries += 1;
        }
    }
    assert!(queries >= 25, "only {queries} queries");
}

#[test]
fn every_alert_rule_is_complete() {
    let rules = alert_rules();
    assert!(rules.len() >= 6, "only {} rules", rules.len());
    let mut names = BTreeSet::new();
    for rule in &rules {
        let alert = rule["alert"].as_str().unwrap_or_default();
        assert!(!alert.is_empty(), "a rule without `alert`: {rule:?}");
        assert!(names.insert(alert.to_owned()), "{alert}: named twice");
        assert!(
            rule["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{alert}: expr"
        );
        let r#for = rule["for"].as_str().unwrap_or_default();
        assert!(
            r#for.len() >= 2
                && r#for[..r#for.len() - 1].chars().all(|c| c.is_ascii_digit())
                && r#for.ends_with(['s', 'm', 'h']),
            "{alert}: `for` is a duration such as 10m, not {:?}",
            rule["for"]
        );
        assert!(
            ["critical", "warning", "info"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or_default()),
            "{alert}: labels.severity"
        );
        assert!(
            rule["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{alert}: annotations.summary"
        );
    }
    // What the rules must cover.
    let exprs: String = rules.iter().filter_map(|r| r["expr"].as_str()).collect();
    for needed in [
        "fleet_consumer_pending",
        "fleet_dead_letters_total",
        r#"outcome="reauth_required""#,
        "fleet_provider_requests_total",
        r#"outcome="failed""#,
        "up{",
    ] {
        assert!(exprs.contains(needed), "no rule uses {needed}");
    }
}

#[test]
fn the_dashboard_and_the_rules_use_only_documented_series() {
    let documented = documented();
    let mut used = BTreeSet::new();
    let dashboard = dashboard();
    let rules = alert_rules();
    let exprs = panels(&dashboard)
        .into_iter()
        .filter_map(|panel| panel["targets"].as_array())
        .flatten()
        .filter_map(|target| target["expr"].as_str())
        .chain(rules.iter().filter_map(|rule| rule["expr"].as_str()))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric found in {expr}");
        for name in names {
            assert!(
                exported(&name, &documented) || PROMETHEUS_SERIES.contains(&name.as_str()),
                "{name} (in {expr}) is no series docs/operations.md lists"
            );
            used.insert(name);
        }
    }
    // Every documented series is on the dashboard or in a rule.
    for (name, kind) in &documented {
        let shown = used.contains(name)
            || (*kind == Kind::Histogram
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| used.contains(&format!("{name}{suffix}"))));
        assert!(shown, "{name} is on no panel and in no rule");
    }
}

/// The literal names of the `counter!`, `gauge!` and `histogram!` calls in
/// `dir`'s Rust files, recursively.
fn emitted(dir: &Path, names: &mut BTreeMap<String, (Kind, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            emitted(&path, names);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for (macro_name, kind) in [
            ("counter!(", Kind::Counter),
            ("gauge!(", Kind::Gauge),
            ("histogram!(", Kind::Histogram),
        ] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = text[at + macro_name.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let name = &rest[..rest.find('"').expect("a closed string")];
                names.insert(name.to_owned(), (kind, path.clone()));
            }
        }
    }
}

#[test]
fn every_series_the_code_emits_is_documented_with_its_type() {
    let documented = documented();
    let mut names = BTreeMap::new();
    let crates = repo().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let src = entry.expect("a crate").path().join("src");
        if src.is_dir() {
            emitted(&src, &mut names);
        }
    }
    assert!(
        names.len() >= 15,
        "found only {names:?}: did the metrics calls change form?"
    );
    for (name, (kind, path)) in &names {
        assert_eq!(
            documented.get(name),
            Some(kind),
            "{name} ({kind:?}, emitted in {}) is not in docs/operations.md's metrics table with that type",
            path.display()
        );
    }
}
