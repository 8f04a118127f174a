//! Chaos under load: `fleet worker` processes killed with SIGKILL, and
//! nats-server, OpenBao, PostgreSQL and the provider going away, while
//! setup chains and scheduled syncs run. Each scenario then checks what a
//! user would notice (every connection synced, every record stored once, no
//! dead letter, dashboards showing the end state, limits and Retry-After
//! kept) and prints what it counted as one JSON line, also written to
//! `<target>/tmp/chaos/<scenario>.json`. A failure prints the report with
//! every chain that did not complete: its last status on the stream, its
//! row in PostgreSQL, and the dead letters filed under it.
//!
//! The suite runs them small. `FLEET_CHAOS_SIZE=full` (what `scripts/chaos`
//! sets) runs them at full size: 5,000 chains under SIGKILLs, 20-second
//! dependency outages, a minute of 429s and of 5xx, 10,000 schedules due
//! at once.

pub(crate) mod dashboard;
mod load;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_bus::Schedules;
use fleet_events::{
    ConnectionId, ConnectionStatus, ConnectorId, CorrelationId, Envelope, SyncRequested,
    SyncTrigger, TenantId,
};
use fleet_sim::{Fault, SiteConfig, UserConfig};
use futures::StreamExt as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::helpers::{FleetProcess, SITE, USER, World, holds_within};
use dashboard::Dashboard;
use load::Load;
use report::Report;

const PASSWORD: &str = "Zq7x Kp2m Vw9r Lt4n Hb6c Fy3d";

/// How big a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Size {
    /// In the test suite: seconds per scenario.
    Small,
    /// `FLEET_CHAOS_SIZE=full`: the sizes the scenarios are named for.
    Full,
}

impl Size {
    #[expect(
        clippy::disallowed_methods,
        reason = "FLEET_CHAOS_SIZE is a switch of these tests, not configuration"
    )]
    fn from_env() -> Self {
        match std::env::var("FLEET_CHAOS_SIZE").as_deref() {
            Ok("full") => Self::Full,
            _ => Self::Small,
        }
    }

    fn pick<T>(self, small: T, full: T) -> T {
        match self {
            Self::Small => small,
            Self::Full => full,
        }
    }
}

fn tenants(count: usize) -> Vec<TenantId> {
    (0..count)
        .map(|i| TenantId::parse(&format!("chaos-{i}")).unwrap())
        .collect()
}

/// A site of `posts` posts and one page, with the test's administrator.
fn site(name: &str, posts: u32) -> SiteConfig {
    SiteConfig::new(name)
        .user(UserConfig::administrator(USER, PASSWORD))
        .posts(posts)
        .pages(1)
}

/// One dashboard per tenant, on the bridge at `base`.
fn dashboards(world: &World, base: &str, tenants: &[TenantId]) -> Vec<Dashboard> {
    tenants
        .iter()
        .map(|tenant| Dashboard::open(base, world.token_for(tenant)))
        .collect()
}

/// Waits until every chain's dashboard shows it synced with its records;
/// records the ones that do not (what the dashboard shows, the last status
/// on the stream, the row in PostgreSQL), and what the dashboards went
/// through.
async fn check_dashboards(
    world: &World,
    load: &Load,
    tenants: &[TenantId],
    dashboards: &[Dashboard],
    report: &mut Report,
) {
    let missing = || -> Vec<(&load::Chain, Option<ConnectionStatus>)> {
        load.chains
            .iter()
            .filter_map(|chain| {
                let index = tenants.iter().position(|t| *t == chain.tenant).unwrap();
                let shown = dashboards[index].with(|view| view.statuses.get(&chain.connection).cloned());
                let complete = matches!(
                    &shown,
                    Some(ConnectionStatus::Synced { records, .. }) if *records == chain.expected_records
                );
                (!complete).then_some((chain, shown))
            })
            .collect()
    };
    holds_within(Duration::from_secs(30), || {
        let done = missing().is_empty();
        async move { done }
    })
    .await;
    let missing = missing();
    let mut details = Vec::new();
    for (chain, shown) in missing.iter().take(10) {
        let row = world
            .store
            .get_connection(&chain.tenant, &chain.connection)
            .await
            .ok()
            .flatten()
            .map(|row| row.status);
        details.push(serde_json::json!({
            "tenant": chain.tenant.as_str(),
            "connection": chain.connection.as_str(),
            "dashboard": shown,
            "stream": load.last_status(&chain.connection),
            "postgres": row,
        }));
    }
    let counts: Vec<_> = dashboards.iter().map(|d| d.with(|v| v.counts)).collect();
    report.set("dashboards", &counts);
    report.set("dashboards_missing_final_status", missing.len());
    report.set("dashboards_missing", details);
    report.check(
        missing.is_empty(),
        format!(
            "{} connections do not show synced with every record on their dashboard",
            missing.len()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_sigkill_workers_under_load() {
    let size = Size::from_env();
    let chains = size.pick(60, 5000);
    let posts = size.pick(250, 20);
    let world = World::start_for_chaos(fleet_sim::Config::default().site(site(SITE, posts))).await;
    // Every provider call takes a while, so kills land in the middle of syncs.
    world
        .sim
        .inject_global(Fault::Slow { delay_ms: 100 }, u32::MAX);
    let tenants = tenants(size.pick(3, 50));
    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push(world.spawn_worker(&format!("worker-{i}.0"), &[]).await);
    }
    // The workers provision the streams the bridge reads.
    let (_bridge, bridge) = world.spawn_bridge("bridge").await;
    let dashboards = dashboards(&world, &bridge, &tenants);
    let mut report = Report::new("sigkill-workers", size);
    let mut load = Load::watch(&world.js);
    let expected = u64::from(posts) + 1;
    load.start(&world, &tenants, chains, |_| {
        (world.credentials(PASSWORD), expected)
    })
    .await;

    let every = size.pick(Duration::from_secs(1), Duration::from_secs(3));
    let deadline = Instant::now() + size.pick(Duration::from_secs(120), Duration::from_secs(1800));
    let mut kills = 0_u32;
    while load.with(|w| w.count_synced(1)) < chains && Instant::now() < deadline {
        tokio::time::sleep(every).await;
        let victim = fastrand::usize(..workers.len());
        workers[victim].kill();
        kills += 1;
        workers[victim] = world
            .spawn_worker(&format!("worker-{victim}.{kills}"), &[])
            .await;
    }
    load.wait_synced(1, deadline.saturating_duration_since(Instant::now()))
        .await;

    report.set("worker_processes", workers.len());
    report.set("sigkills", kills);
    report.check(
        kills >= 2,
        format!("only {kills} kills landed during the load"),
    );
    load.account(&world, 1, &mut report).await;
    check_dashboards(&world, &load, &tenants, &dashboards, &mut report).await;
    report.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_nats_restart_under_load() {
    let size = Size::from_env();
    let posts = size.pick(250, 20);
    let world = World::start_for_chaos(fleet_sim::Config::default().site(site(SITE, posts))).await;
    nats_restart("nats-restart", size, world, size.pick(40, 2000), posts).await;
}

/// The NATS restart again, with the server's store on a disk whose every
/// write takes 3 ms and every fsync 12 ms (a FUSE file system).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_nats_restart_on_a_slow_disk() {
    let size = Size::from_env();
    let posts = size.pick(250, 20);
    let disk = fleet_testkit::SlowDisk::mount(Duration::from_millis(3)).await;
    let nats = fleet_testkit::NatsServer::start_with_store(disk.path().join("store")).await;
    let world =
        World::start_for_chaos_on(nats, fleet_sim::Config::default().site(site(SITE, posts))).await;
    nats_restart(
        "nats-restart-slow-disk",
        size,
        world,
        size.pick(20, 1000),
        posts,
    )
    .await;
    drop(disk);
}

/// Stops nats-server in the middle of `chains` setup chains and starts it
/// again: every chain ends synced, with every record, and the dashboards
/// resume by replay.
async fn nats_restart(name: &'static str, size: Size, mut world: World, chains: usize, posts: u32) {
    let outage = size.pick(Duration::from_secs(2), Duration::from_secs(10));
    // Small: syncs of three pages; full: many more chains of one page each.
    let expected = u64::from(posts) + 1;
    world
        .sim
        .inject_global(Fault::Slow { delay_ms: 50 }, u32::MAX);
    let tenants = tenants(size.pick(3, 20));
    let _workers = [
        world.spawn_worker("worker-a", &[]).await,
        world.spawn_worker("worker-b", &[]).await,
    ];
    let (_bridge, bridge) = world.spawn_bridge("bridge").await;
    let (_gateway, gateway) = world.spawn_gateway("gateway", &[]).await;
    let dashboards = dashboards(&world, &bridge, &tenants);
    let mut report = Report::new(name, size);
    let mut load = Load::watch(&world.js);
    load.start(&world, &tenants, chains, |_| {
        (world.credentials(PASSWORD), expected)
    })
    .await;
    wait_for(&load, chains / 8, Duration::from_secs(60)).await;

    let done_before = load.with(|w| w.count_synced(1));
    world.nats().stop();
    tokio::time::sleep(outage).await;
    world.nats().restart().await;
    let back = Instant::now();
    let synced = load
        .wait_synced(
            1,
            size.pick(Duration::from_secs(90), Duration::from_secs(900)),
        )
        .await;
    report.set("nats_outage_secs", outage.as_secs_f64());
    report.set("synced_before_the_outage", done_before);
    report.set(
        "secs_to_finish_after_restart",
        synced.then(|| back.elapsed().as_secs_f64()),
    );
    let ready = eventually_ok(&format!("{gateway}/readyz"), Duration::from_secs(30)).await;
    report.check(ready, "the gateway is not ready again after NATS came back");
    load.account(&world, 1, &mut report).await;
    check_dashboards(&world, &load, &tenants, &dashboards, &mut report).await;
    let resyncs: u64 = dashboards
        .iter()
        .map(|d| d.with(|v| v.counts.resyncs))
        .sum();
    report.check(
        resyncs == 0,
        format!("{resyncs} dashboards got a fresh snapshot instead of a replay"),
    );
    report.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_openbao_then_postgres_outage_under_load() {
    let size = Size::from_env();
    let chains = size.pick(12, 1000);
    let outage = size.pick(Duration::from_secs(5), Duration::from_secs(20));
    let posts = size.pick(250, 20);
    let expected = u64::from(posts) + 1;
    let mut world =
        World::start_for_chaos(fleet_sim::Config::default().site(site(SITE, posts))).await;
    world
        .sim
        .inject_global(Fault::Slow { delay_ms: 100 }, u32::MAX);
    let tenants = tenants(size.pick(3, 20));
    // Requests wait at most 1 s for a PostgreSQL connection (and a step
    // retries its call three times within about a second more), so a
    // short outage shows.
    let env = [(
        "FLEET_DATABASE__ACQUIRE_TIMEOUT_SECONDS".to_owned(),
        "1".to_owned(),
    )];
    let _workers = [
        world.spawn_worker_with("worker-a", &[], &env).await,
        world.spawn_worker_with("worker-b", &[], &env).await,
    ];
    let mut report = Report::new("openbao-then-postgres-outage", size);
    let mut load = Load::watch(&world.js);
    let finish = size.pick(Duration::from_secs(90), Duration::from_secs(900));
    let site_credentials = world.credentials(PASSWORD);
    let credentials = |_| (site_credentials.clone(), expected);

    // OpenBao goes away after the gateway staged the credentials of some
    // chains, and while others run.
    load.start(&world, &tenants, chains, credentials).await;
    let staged = Load::prepare(&world, &tenants, chains, credentials).await;
    wait_for(&load, 2, Duration::from_secs(60)).await;
    world.vault().stop();
    load.launch(&world, staged).await;
    tokio::time::sleep(outage).await;
    world.vault().restart().await;
    let vault_retries = load.with(|w| w.retries);
    load.wait_synced(1, finish).await;

    // Then PostgreSQL, the same way.
    let before = load.chains.len();
    load.start(&world, &tenants, chains, credentials).await;
    let staged = Load::prepare(&world, &tenants, chains, credentials).await;
    wait_for(&load, before + 2, Duration::from_secs(60)).await;
    world.postgres.stop();
    load.launch(&world, staged).await;
    tokio::time::sleep(outage).await;
    world.postgres.restart().await;
    load.wait_synced(1, finish).await;

    let retries = load.with(|w| w.retries);
    report.set("outage_secs", outage.as_secs_f64());
    report.set("retries_during_openbao_outage", vault_retries);
    report.set("retries_during_postgres_outage", retries - vault_retries);
    report.check(
        vault_retries > 0 && retries > vault_retries,
        "each outage shows as retrying",
    );
    let reasons = load.with(|w| w.retry_reasons.clone());
    // A reason a tenant reads: what is down, not where it lives.
    report.check(
        reasons.iter().all(|r| {
            (r.starts_with("the secret store is unavailable")
                || r.starts_with("the database is unavailable"))
                && !r.contains("127.0.0.1")
                && !r.contains("/tenants/")
                && !r.contains(PASSWORD)
        }),
        "every retrying reason says what is unavailable, without addresses, paths or secrets",
    );
    // Every finished connection uses the credentials it staged: none is
    // left with a staged version that was never promoted.
    let mut staged_left = 0;
    for chain in &load.chains {
        let in_use = world
            .store
            .credentials_in_use(&chain.tenant, &chain.connection)
            .await
            .unwrap();
        if in_use != Some(fleet_store::CredentialsInUse::Version(chain.staged.get())) {
            staged_left += 1;
        }
    }
    // No finished run keeps its connection's sync slot: the next request
    // would join a run that no longer runs.
    let held = eventually_none_held(&world).await;
    report.set("sync_slots_left_held", held);
    report.check(
        held == 0,
        format!("{held} connections keep the sync slot of a finished run"),
    );
    report.set("staged_secrets_left", staged_left);
    report.check(
        staged_left == 0,
        format!("{staged_left} finished connections do not use the credentials they staged"),
    );
    load.account(&world, 1, &mut report).await;
    report.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_provider_storm_of_429_then_5xx() {
    let size = Size::from_env();
    let sites = size.pick(12, 100);
    let storm = size.pick(Duration::from_secs(6), Duration::from_secs(60));
    let retry_after = 2;
    let mut config = fleet_sim::Config::default();
    let names: Vec<String> = (0..sites).map(|i| format!("site-{i}")).collect();
    for name in &names {
        config = config.site(site(name, 30));
    }
    let world = World::start_for_chaos(config).await;
    let tenants = tenants(size.pick(3, 25));
    let _workers = [
        world.spawn_worker("worker-a", &[]).await,
        world.spawn_worker("worker-b", &[]).await,
    ];
    let mut report = Report::new("provider-storm", size);
    let mut load = Load::watch(&world.js);
    load.start(&world, &tenants, sites, |i| {
        let credentials = fleet_connectors::Credentials::app_password(
            world.sim.site_url(&names[i]),
            USER,
            PASSWORD,
        );
        (credentials, 31)
    })
    .await;
    let finish = size.pick(Duration::from_secs(60), Duration::from_secs(600));
    report.check(load.wait_synced(1, finish).await, "the setups finish");

    // A storm of 429s with Retry-After, then one of 503s without it.
    let mut phases = BTreeMap::new();
    for (round, (phase, fault)) in [
        (
            "429",
            Fault::RateLimited {
                retry_after_secs: retry_after,
            },
        ),
        (
            "503",
            Fault::Unavailable {
                retry_after_secs: None,
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        world.sim.inject_global(fault, u32::MAX);
        load.sync_all(&world).await;
        let traffic = Traffic::sample(&world, &names, storm).await;
        world.sim.clear_faults();
        let cleared = Instant::now();
        let done = load.wait_synced(round as u32 + 2, finish).await;
        report.check(
            done,
            format!("every sync completes after the {phase} storm"),
        );
        phases.insert(
            phase,
            serde_json::json!({
                "storm_secs": storm.as_secs_f64(),
                "requests": traffic.total(),
                "max_requests_per_second": traffic.max_per_second(),
                "max_requests_per_site": traffic.max_per_site(),
                "min_gap_between_a_sites_requests_secs": traffic.min_gap(),
                "secs_to_complete_after": done.then(|| cleared.elapsed().as_secs_f64()),
            }),
        );
        let window = storm.as_secs_f64();
        if phase == "429" {
            // One request per Retry-After per site, and the first.
            let bound = (window / retry_after as f64).floor() as u64 + 1;
            report.check(
                traffic.max_per_site() <= bound,
                format!(
                    "a site got {} requests in a {window} s storm of Retry-After {retry_after} s",
                    traffic.max_per_site()
                ),
            );
            // Sampling every 50 ms blurs a gap by up to 100 ms.
            report.check(
                traffic
                    .min_gap()
                    .is_none_or(|gap| gap >= retry_after as f64 - 0.15),
                format!("Retry-After not respected: {:?}", traffic.min_gap()),
            );
        } else {
            // Each sync attempt makes at most three calls; the step's own
            // retries wait 1 s, 5 s, 30 s, 2 min (±20 %).
            let attempts = 1 + [0.8, 4.8, 28.8, 124.8]
                .iter()
                .filter(|&&at| at < window)
                .count() as u64;
            report.check(
                traffic.max_per_site() <= 3 * attempts,
                format!(
                    "a site got {} requests in {window} s of 503s (at most {} attempts of 3 calls)",
                    traffic.max_per_site(),
                    attempts
                ),
            );
        }
    }
    report.set("phases", phases);
    load.account(&world, 3, &mut report).await;
    report.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_scheduled_fan_out() {
    let size = Size::from_env();
    let connections = size.pick(200, 10_000);
    let every = size.pick(Duration::from_secs(10), Duration::from_secs(600));
    let max_per_tenant = 4;
    let world = World::start_for_chaos(fleet_sim::Config::default().site(site(SITE, 5))).await;
    let tenants = tenants(size.pick(10, 100));
    let _steps = world
        .spawn_worker("steps", &["--steps", "validate,save,status"])
        .await;
    let mut syncers = Vec::new();
    for i in 0..3 {
        syncers.push(
            world
                .spawn_worker(&format!("sync-{i}"), &["--steps", "sync"])
                .await,
        );
    }
    let mut report = Report::new("scheduled-fan-out", size);
    let mut load = Load::watch(&world.js);
    load.start(&world, &tenants, connections, |_| {
        (world.credentials(PASSWORD), 6)
    })
    .await;
    let setup = size.pick(Duration::from_secs(90), Duration::from_secs(1800));
    report.check(load.wait_synced(1, setup).await, "the setups finish");
    let handled_before: Vec<usize> = syncers.iter().map(handled).collect();

    // Every connection's schedule, set as fast as the server takes them.
    let set_at = Instant::now();
    let schedules = Schedules::new(world.js.clone());
    let wordpress = ConnectorId::parse("wordpress").unwrap();
    let due: HashMap<ConnectionId, DateTime<Utc>> = futures::stream::iter(&load.chains)
        .map(|chain| {
            let (schedules, wordpress) = (schedules.clone(), wordpress.clone());
            async move {
                let request = Envelope::new(
                    chain.tenant.clone(),
                    chain.connection.clone(),
                    wordpress,
                    CorrelationId::new(),
                    SyncRequested {
                        trigger: SyncTrigger::Scheduled,
                        streams: None,
                        cursor: None,
                    },
                );
                schedules.set(&request, every).await.unwrap();
                let due = Utc::now() + every;
                (chain.connection.clone(), due)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let first_due = *due.values().min().unwrap();
    let last_due = *due.values().max().unwrap();

    // Each fires once: the schedules go before they fire again, and the
    // syncs they started drain.
    let second_round = set_at + every * 2 - Duration::from_secs(2);
    load.wait_synced(2, second_round.saturating_duration_since(Instant::now()))
        .await;
    futures::stream::iter(&load.chains)
        .map(|chain| schedules.remove(&chain.tenant, &chain.connection))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let drained = load.wait_synced(2, setup).await;
    report.check(drained, "every scheduled sync completes");

    let runs = scheduled_runs(&world).await;
    let mut per_connection: HashMap<&str, usize> = HashMap::new();
    for run in &runs {
        *per_connection.entry(run.connection.as_str()).or_default() += 1;
    }
    let double = per_connection.values().filter(|&&n| n > 1).count();
    let skipped = connections - per_connection.len();
    let mut delays: Vec<f64> = runs
        .iter()
        .filter_map(|run| {
            let connection = ConnectionId::parse(&run.connection).ok()?;
            let due = due.get(&connection)?;
            Some((run.started_at - *due).as_seconds_f64().max(0.0))
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        delays
            .get(((delays.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
    };
    let drain = runs
        .iter()
        .filter_map(|run| run.finished_at)
        .max()
        .map(|end| (end - first_due).as_seconds_f64());
    let concurrency = max_concurrency_per_tenant(&runs);
    let handled: Vec<usize> = syncers
        .iter()
        .zip(&handled_before)
        .map(|(process, before)| handled(process) - before)
        .collect();
    report.chains_started = connections;
    report.set("schedules", connections);
    report.set("interval_secs", every.as_secs());
    report.set("due_spread_secs", (last_due - first_due).as_seconds_f64());
    report.set("scheduled_runs", runs.len());
    report.set("double_runs", double);
    report.set("skipped", skipped);
    report.set("secs_to_drain", drain);
    report.set("delay_due_to_start_p50_secs", percentile(0.50));
    report.set("delay_due_to_start_p99_secs", percentile(0.99));
    report.set("delay_due_to_start_max_secs", percentile(1.0));
    report.set("max_syncs_at_once_per_tenant", concurrency);
    report.set("syncs_per_worker_process", &handled);
    report.check(double == 0, format!("{double} schedules fired twice"));
    report.check(skipped == 0, format!("{skipped} schedules never fired"));
    report.check(
        concurrency <= max_per_tenant,
        format!("a tenant ran {concurrency} syncs at once, over its limit of {max_per_tenant}"),
    );
    report.check(
        handled.iter().all(|&n| n > 0),
        format!("the scheduled syncs did not spread over the workers: {handled:?}"),
    );
    load.account(&world, 2, &mut report).await;
    report.finish();
}

/// Waits until `count` chains have synced, or `deadline` passes.
async fn wait_for(load: &Load, count: usize, deadline: Duration) {
    holds_within(deadline, || {
        let done = load.with(|w| w.count_synced(1)) >= count;
        async move { done }
    })
    .await;
}

/// Connections whose sync slot is still held, once none is for 30 s at the
/// most: a slot whose freeing failed in an outage is freed again soon after.
async fn eventually_none_held(world: &World) -> i64 {
    let pool = sqlx::PgPool::connect(&world.database_url).await.unwrap();
    let held = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM connections WHERE sync_slot_run IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    holds_within(Duration::from_secs(30), || async { held().await == 0 }).await;
    held().await
}

/// Whether `url` answers 200 within `deadline`.
async fn eventually_ok(url: &str, deadline: Duration) -> bool {
    let http = &reqwest::Client::new();
    holds_within(deadline, || async move {
        http.get(url)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await
}

/// Sync steps a worker process has handled.
fn handled(process: &FleetProcess) -> usize {
    process.count_logged("Step handled the event.")
}

/// Requests each simulated site received, sampled every 50 ms.
struct Traffic {
    /// Per site, when its request count rose (seconds since the start).
    rises: Vec<Vec<f64>>,
    per_site: Vec<u64>,
    per_second: Vec<u64>,
}

impl Traffic {
    async fn sample(world: &World, sites: &[String], window: Duration) -> Self {
        let start = Instant::now();
        let first: Vec<u64> = sites.iter().map(|s| world.sim.requests(s)).collect();
        let mut last = first.clone();
        let mut rises = vec![Vec::new(); sites.len()];
        let mut per_second = vec![0; window.as_secs() as usize + 1];
        while start.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let at = start.elapsed().as_secs_f64();
            for (i, site) in sites.iter().enumerate() {
                let now = world.sim.requests(site);
                if now > last[i] {
                    rises[i].push(at);
                    let second = (at as usize).min(per_second.len() - 1);
                    per_second[second] += now - last[i];
                    last[i] = now;
                }
            }
        }
        let per_site = last.iter().zip(&first).map(|(l, f)| l - f).collect();
        Self {
            rises,
            per_site,
            per_second,
        }
    }

    fn total(&self) -> u64 {
        self.per_site.iter().sum()
    }

    fn max_per_second(&self) -> u64 {
        self.per_second.iter().copied().max().unwrap_or(0)
    }

    fn max_per_site(&self) -> u64 {
        self.per_site.iter().copied().max().unwrap_or(0)
    }

    /// The shortest time between two rises of one site's count.
    fn min_gap(&self) -> Option<f64> {
        self.rises
            .iter()
            .flat_map(|rises| rises.windows(2).map(|pair| pair[1] - pair[0]))
            .min_by(f64::total_cmp)
    }
}

/// One scheduled sync run, from `sync_runs`.
#[derive(sqlx::FromRow)]
struct Run {
    tenant: String,
    connection: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

async fn scheduled_runs(world: &World) -> Vec<Run> {
    let pool = sqlx::PgPool::connect(&world.database_url).await.unwrap();
    sqlx::query_as(
        "SELECT tenant::text, connection::text, started_at, finished_at
         FROM sync_runs WHERE trigger = 'scheduled'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
}

/// The most runs of one tenant that overlapped in time.
fn max_concurrency_per_tenant(runs: &[Run]) -> usize {
    let mut edges: BTreeMap<&str, Vec<(DateTime<Utc>, i32)>> = BTreeMap::new();
    for run in runs {
        let end = run.finished_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
        let tenant = edges.entry(run.tenant.as_str()).or_default();
        tenant.push((run.started_at, 1));
        tenant.push((end, -1));
    }
    edges
        .into_values()
        .map(|mut tenant| {
            // An end sorts before a start at the same instant.
            tenant.sort();
            let (mut now, mut most) = (0, 0);
            for (_, step) in tenant {
                now += step;
                most = most.max(now);
            }
            most as usize
        })
        .max()
        .unwrap_or(0)
}
