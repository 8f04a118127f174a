//! Property tests of the daily report streams: Google Analytics'
//! `daily_metrics`, Meta's `ad_insights` and LinkedIn's
//! `follower_statistics`.
//!
//! Each case seeds a provider's days at random (days without traffic or
//! delivery included), then runs steps of provider-side changes (new days
//! of data, revised recent days) each followed by a sync, full or
//! incremental, into an in-memory store of the records by id, as the sync
//! worker upserts them. The changes keep to what the provider documents:
//! after a pass that began `k` days ago, only days from `k` plus the
//! provider's revision window back change. After the last step, every
//! day that some pass had to cover is stored exactly as the provider now
//! reports it, a day without data has no record, and no stored record
//! differs from the provider.
//!
//! The store-free harness drives `sync_page` from a pass's first cursor
//! (none for a full pass, `incremental_start` for an incremental one) to
//! its end; `sync_from` in the helpers.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate, Utc};
use fleet_connectors::{Connector, Credentials, Record};
use fleet_sim::{GoogleConfig, LinkedInConfig, MetaConfig, MetaUserConfig};
use proptest::prelude::*;
use serde_json::Value;

use crate::helpers::{connect, google_catalog, oauth, oauth_config, spawn_google, sync_from};

/// The days a full pass of each stream covers, counted back from its last
/// day.
const WINDOW_DAYS: u64 = 30;

/// How many days seeds reach back: more than any pass in these cases.
const SEEDED_DAYS: usize = 121;

/// A sync: a full pass, or an incremental one whose last complete pass
/// began `days_since` days ago.
#[derive(Debug, Clone, Copy)]
enum Pass {
    Full,
    Incremental { days_since: u64 },
}

/// Provider-side changes, then a sync.
#[derive(Debug, Clone)]
struct Step {
    /// Days ago (before being brought into the revisable range) and the
    /// new value of that day.
    changes: Vec<(u64, u64)>,
    pass: Pass,
}

fn pass() -> impl Strategy<Value = Pass> {
    prop_oneof![
        1 => Just(Pass::Full),
        3 => (0..40_u64).prop_map(|days_since| Pass::Incremental { days_since }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        prop::collection::vec((0..80_u64, 1..5_000_u64), 0..8),
        pass(),
    )
        .prop_map(|(changes, pass)| Step { changes, pass });
    prop::collection::vec(step, 1..6)
}

/// A value per day, from today back; `None` for a day without data in
/// about one case in five.
fn seed() -> impl Strategy<Value = Vec<Option<u64>>> {
    prop::collection::vec(prop::option::weighted(0.8, 1..5_000_u64), SEEDED_DAYS)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// What a stream's provider documents about its days, and how the test
/// reads and writes them at the simulated provider.
struct Provider<'a> {
    stream: &'static str,
    /// Days before a pass that an incremental pass must read again.
    revision_days: u64,
    /// The last day a pass covers: today, or yesterday for providers that
    /// leave out the day in progress.
    last_day: NaiveDate,
    /// The provider's value of `(series, day)` as the test compares it;
    /// `None` for a day without data.
    value: &'a dyn Fn(&str, NaiveDate) -> Option<Value>,
    /// A stored record's series, day and value.
    stored: &'a dyn Fn(&Record) -> (String, NaiveDate, Value),
    /// Sets `(series, day)` to the given value (`None`: no data).
    set: &'a dyn Fn(&str, NaiveDate, Option<u64>),
}

/// Runs `steps` after seeding `series` with `seed`, and checks the store
/// against the provider.
async fn check(
    provider: &Provider<'_>,
    connector: &dyn Connector,
    credentials: &Credentials,
    series: &[String],
    seed: &[Option<u64>],
    steps: &[Step],
) {
    let today = Utc::now().date_naive();
    for name in series {
        for (ago, value) in seed.iter().enumerate() {
            (provider.set)(name, today - Days::new(ago as u64), *value);
        }
    }
    let mut store: BTreeMap<String, Record> = BTreeMap::new();
    let mut covered: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    let mut passed = false;
    for step in steps {
        let pass = if passed { step.pass } else { Pass::Full };
        // The days the provider may still revise after the last pass, as
        // documented; a full pass covers its window.
        let (first_day, open_days) = match pass {
            Pass::Full => (provider.last_day - Days::new(WINDOW_DAYS - 1), 0),
            Pass::Incremental { days_since } => {
                let since = today - Days::new(days_since);
                (since - Days::new(provider.revision_days), days_since)
            }
        };
        for (n, (ago, value)) in step.changes.iter().enumerate() {
            let revisable = match pass {
                Pass::Full => (today - first_day).num_days().unsigned_abs(),
                Pass::Incremental { .. } => open_days + provider.revision_days,
            };
            let day = today - Days::new(ago % (revisable + 1));
            (provider.set)(&series[n % series.len()], day, Some(*value));
        }
        let start = match pass {
            Pass::Full => None,
            Pass::Incremental { days_since } => {
                let since = Utc::now() - chrono::Duration::days(i64::try_from(days_since).unwrap());
                Some(connector.incremental_start(provider.stream, since).unwrap())
            }
        };
        let synced = sync_from(connector, credentials, provider.stream, start).await;
        assert!(synced.gaps.is_empty(), "{:?}", synced.gaps);
        for record in synced.records {
            store.insert(record.external_id.clone(), record);
        }
        covered.push((first_day, provider.last_day));
        passed = true;
    }
    assert_matches_provider(provider, series, &store, &covered);
}

/// Every day of `covered` is stored as the provider reports it (or not at
/// all when it has no data), and every stored record is current.
fn assert_matches_provider(
    provider: &Provider<'_>,
    series: &[String],
    store: &BTreeMap<String, Record>,
    covered: &[(NaiveDate, NaiveDate)],
) {
    let stored: BTreeMap<(String, NaiveDate), Value> = store
        .values()
        .map(|record| {
            let (name, day, value) = (provider.stored)(record);
            ((name, day), value)
        })
        .collect();
    assert_eq!(stored.len(), store.len(), "one record per series and day");
    for ((name, day), value) in &stored {
        assert_eq!(
            Some(value),
            (provider.value)(name, *day).as_ref(),
            "{name} on {day} is stored stale or without data at the provider"
        );
    }
    for name in series {
        for (first, last) in covered {
            for day in first.iter_days().take_while(|day| day <= last) {
                assert_eq!(
                    stored.get(&(name.clone(), day)),
                    (provider.value)(name, day).as_ref(),
                    "{name} on {day}, covered by a pass from {first} to {last}"
                );
            }
        }
    }
}

fn date(record: &Record) -> NaiveDate {
    NaiveDate::parse_from_str(record.payload["date"].as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// The property the Google Analytics connector reads.
const PROPERTY: u64 = 1_000_001;

async fn google_analytics(seed: Vec<Option<u64>>, steps: Vec<Step>) {
    let sim = spawn_google(GoogleConfig::default()).await;
    let dir = google_catalog(&sim, 7);
    let (client, connector) = oauth(
        &oauth_config(&dir, &["google-analytics"]),
        "google-analytics",
    );
    let credentials = connect(&client).await;
    let value = |_: &str, day| sim.google_sessions(PROPERTY, day).map(Value::from);
    let stored = |record: &Record| {
        let sessions = record.payload["sessions"].clone();
        (PROPERTY.to_string(), date(record), sessions)
    };
    let set = |_: &str, day, sessions| sim.set_google_sessions(PROPERTY, day, sessions);
    let provider = Provider {
        stream: "daily_metrics",
        revision_days: 3,
        last_day: Utc::now().date_naive(),
        value: &value,
        stored: &stored,
        set: &set,
    };
    let series = [PROPERTY.to_string()];
    check(&provider, &*connector, &credentials, &series, &seed, &steps).await;
}

async fn meta(day_limit: Option<u32>, seed: Vec<Option<u64>>, steps: Vec<Step>) {
    let user = MetaUserConfig {
        insights_day_limit: day_limit,
        ..MetaUserConfig::new("ada", 2)
    };
    let sim = crate::meta::spawn_meta(MetaConfig::default().user(user)).await;
    let (_, connector, credentials) = crate::meta::connected(&sim, 7).await;
    let accounts = ad_accounts(&*connector, &credentials).await;
    let value = |account: &str, day| sim.meta_impressions(account, day).map(Value::from);
    let stored = |record: &Record| {
        let account = record.payload["account"].as_str().unwrap().to_owned();
        let impressions = record.payload["numbers"]["impressions"].clone();
        (account, date(record), impressions)
    };
    let set = |account: &str, day, impressions| sim.set_meta_impressions(account, day, impressions);
    let provider = Provider {
        stream: "ad_insights",
        revision_days: 28,
        last_day: Utc::now().date_naive() - Days::new(1),
        value: &value,
        stored: &stored,
        set: &set,
    };
    check(
        &provider,
        &*connector,
        &credentials,
        &accounts,
        &seed,
        &steps,
    )
    .await;
}

/// The ad accounts `ad_insights` reads, from one pass over a day.
async fn ad_accounts(connector: &dyn Connector, credentials: &Credentials) -> Vec<String> {
    let since = Utc::now() - chrono::Duration::days(1);
    let start = connector.incremental_start("ad_insights", since).unwrap();
    let synced = sync_from(connector, credentials, "ad_insights", Some(start)).await;
    let mut accounts: Vec<String> = synced
        .records
        .iter()
        .map(|record| record.payload["account"].as_str().unwrap().to_owned())
        .collect();
    accounts.dedup();
    accounts
}

async fn linkedin(seed: Vec<Option<u64>>, steps: Vec<Step>) {
    let sim = crate::linkedin::spawn(LinkedInConfig::default(), 2).await;
    let (_, connector, credentials) = crate::linkedin::connected(&sim, 10, "").await;
    let start = connector
        .incremental_start("follower_statistics", Utc::now())
        .unwrap();
    let mut organizations: Vec<String> = sync_from(
        &*connector,
        &credentials,
        "follower_statistics",
        Some(start),
    )
    .await
    .records
    .iter()
    .map(|record| record.payload["organization"].as_str().unwrap().to_owned())
    .collect();
    organizations.dedup();
    let gains = |(organic, paid): (i64, i64)| Value::from(vec![organic, paid]);
    // Every day has an element: a seeded day "without data" gains no
    // followers.
    let value = |organization: &str, day| sim.linkedin_gains(organization, day).map(gains);
    let stored = |record: &Record| {
        let organic = record.payload["organicFollowerGain"].as_i64().unwrap();
        let paid = record.payload["paidFollowerGain"].as_i64().unwrap();
        let organization = record.payload["organization"].as_str().unwrap().to_owned();
        (organization, date(record), gains((organic, paid)))
    };
    let set = |organization: &str, day, value: Option<u64>| {
        let (organic, paid) = value.map_or((0, 0), |value| {
            let value = i64::try_from(value).unwrap();
            (value % 40 - 5, value % 3)
        });
        sim.set_linkedin_gains(organization, day, organic, paid);
    };
    let provider = Provider {
        stream: "follower_statistics",
        revision_days: 3,
        last_day: Utc::now().date_naive() - Days::new(1),
        value: &value,
        stored: &stored,
        set: &set,
    };
    check(
        &provider,
        &*connector,
        &credentials,
        &organizations,
        &seed,
        &steps,
    )
    .await;
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stored_daily_metrics_equal_the_property_report_after_any_syncs(
        seed in seed(),
        steps in steps(),
    ) {
        runtime().block_on(google_analytics(seed, steps));
    }

    #[test]
    fn stored_ad_insights_equal_the_insights_after_any_syncs(
        day_limit in prop::option::weighted(0.3, 3..10_u32),
        seed in seed(),
        steps in steps(),
    ) {
        runtime().block_on(meta(day_limit, seed, steps));
    }

    #[test]
    fn stored_follower_statistics_equal_the_statistics_after_any_syncs(
        seed in seed(),
        steps in steps(),
    ) {
        runtime().block_on(linkedin(seed, steps));
    }
}
