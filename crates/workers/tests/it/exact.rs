//! Every record, exactly: random provider-side changes (imports sharing
//! one second, edits, removals, changes between and during page requests)
//! interleaved with full and incremental syncs through the whole fleet.
//! After every sync that ran against a quiet provider, the stored live
//! records of each stream are the provider's, with their update times:
//! exactly after a full pass, and after an incremental one wherever the
//! provider reports removals (Trello's activity); elsewhere an incremental
//! pass stores every record the provider has, and what it keeps beyond
//! them was removed at the provider and waits for the daily full pass
//! (docs/syncing.md).
//!
//! Each property test runs a handful of cases on one fleet, each case on a
//! fresh provider account and connection, with a synchronous proptest
//! runner driving the async fleet through a runtime of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use async_nats::jetstream::consumer::pull;
use chrono::{DateTime, Timelike as _, Utc};
use fleet_connectors::Credentials;
use fleet_events::{
    ConnectionId, ConnectionState, ConnectionStatus, ConnectorId, Envelope, SetupOrigin,
    StatusChanged, subject,
};
use fleet_sim::{Collection, SiteChange, SiteConfig, TrelloChange, TrelloMemberConfig, UserConfig};
use fleet_store::{PageCommit, Pass, RecordQuery};
use futures::StreamExt as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::runtime::Runtime;

use crate::helpers::{DEADLINE, PASSWORD, TestFleet, USER};

/// Cases per property: each is a dozen syncs through the fleet.
const CASES: u32 = 16;

/// One step of a case.
#[derive(Debug, Clone)]
enum Step<C> {
    /// A change made now, between syncs.
    Change(C),
    /// A change made while the next sync pages: just before the provider
    /// answers the sync's `request`-th request.
    During(C, u64),
    /// A sync; `full` makes its passes full ones.
    Sync { full: bool },
}

/// Random steps of `change`s and syncs.
fn steps<C: Debug + Clone>(
    change: impl Strategy<Value = C> + Clone,
) -> impl Strategy<Value = Vec<Step<C>>> {
    let step = prop_oneof![
        3 => change.clone().prop_map(Step::Change),
        2 => (change, 1..5_u64).prop_map(|(change, request)| Step::During(change, request)),
        2 => any::<bool>().prop_map(|full| Step::Sync { full }),
    ];
    prop::collection::vec(step, 3..12)
}

/// A provider as a property test drives it.
trait Provider {
    /// A change, naming the records it touches by position (`pick`) among
    /// the current ones.
    type Change: Debug + Clone;

    /// The catalog id.
    const CONNECTOR: &'static str;
    /// How its connections are made.
    const ORIGIN: SetupOrigin = SetupOrigin::Manual;
    /// The streams to compare.
    const STREAMS: &'static [&'static str];

    /// Seeds a fresh account for case `case`, returning its credentials.
    async fn seed(&mut self, fleet: &TestFleet, case: usize) -> Credentials;

    /// The change as the simulator applies it, or `None` when nothing is
    /// left to change.
    fn resolve(&mut self, fleet: &TestFleet, change: &Self::Change) -> Option<Resolved>;

    /// The records the provider has in `stream`: id and update time.
    fn expected(&self, fleet: &TestFleet, stream: &str) -> BTreeMap<String, DateTime<Utc>>;

    /// Whether an incremental pass of `stream` finds every removal.
    fn removals_reported(stream: &str) -> bool;
}

/// A change ready for the simulator.
enum Resolved {
    Site(String, SiteChange),
    Trello(TrelloChange),
}

impl Resolved {
    /// The stream and id of the record this change removes: what an
    /// incremental pass that cannot see removals may keep until a full
    /// pass.
    fn removal(&self) -> Option<(&'static str, String)> {
        let Self::Site(_, change) = self else {
            return None;
        };
        match change {
            SiteChange::Trash { id } | SiteChange::Unpublish { id } | SiteChange::Delete { id } => {
                Some(("posts", id.to_string()))
            }
            SiteChange::DeleteSubscriber { id } => Some(("subscribers", id.to_string())),
            SiteChange::DeleteList { id } => Some(("lists", id.to_string())),
            _ => None,
        }
    }

    fn apply(self, fleet: &TestFleet, during: Option<u64>) {
        let sim = &fleet.sim;
        match (self, during) {
            (Self::Site(site, change), None) => {
                sim.change_site(&site, &change);
            }
            (Self::Site(site, change), Some(request)) => {
                sim.change_site_on_request(&site, request, change);
            }
            (Self::Trello(change), None) => {
                sim.change_trello(MEMBER, &change);
            }
            (Self::Trello(change), Some(request)) => {
                sim.change_trello_on_request(MEMBER, request, change);
            }
        }
    }
}

/// The item at `pick` (wrapping) of `items`, if any.
fn pick<T: Clone>(items: &[T], pick: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[pick % items.len()].clone())
}

/// Runs [`CASES`] cases of `provider` on one fleet.
fn check_property<P: Provider>(
    fleet: impl AsyncFnOnce() -> TestFleet,
    mut provider: P,
    change: impl Strategy<Value = P::Change> + Clone,
) {
    let runtime = Runtime::new().unwrap();
    let fleet = runtime.block_on(fleet());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        max_shrink_iters: 8,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::cell::Cell::new(0);
    let provider = std::cell::RefCell::new(&mut provider);
    let result = runner.run(&steps(change), |steps| {
        case.set(case.get() + 1);
        let mut provider = provider.borrow_mut();
        runtime.block_on(run_case(&fleet, &mut **provider, case.get(), &steps));
        Ok(())
    });
    runtime.block_on(fleet.stop());
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// One case: a fresh account and connection, its first sync, `steps`,
/// and a last sync against a quiet provider.
async fn run_case<P: Provider>(
    fleet: &TestFleet,
    provider: &mut P,
    case: usize,
    steps: &[Step<P::Change>],
) {
    let credentials = provider.seed(fleet, case).await;
    let started = Utc::now();
    let (connection, _) = fleet
        .connect_to(P::CONNECTOR, P::ORIGIN, &credentials)
        .await;
    let mut statuses = Statuses::watch(fleet, &connection).await;
    // The setup's own sync.
    let first = Ended {
        started,
        status: statuses.next_end().await,
    };
    check::<P>(fleet, provider, &connection, &first, &BTreeSet::new()).await;

    let mut removed = BTreeSet::new();
    let mut noisy = false;
    for step in steps {
        match step {
            Step::Change(change) | Step::During(change, _) => {
                let Some(resolved) = provider.resolve(fleet, change) else {
                    continue;
                };
                removed.extend(resolved.removal());
                let during = match step {
                    Step::During(_, request) => Some(*request),
                    _ => None,
                };
                noisy |= during.is_some();
                resolved.apply(fleet, during);
            }
            Step::Sync { full } => {
                let end = sync::<P>(fleet, &connection, &mut statuses, *full).await;
                if !std::mem::take(&mut noisy) {
                    check::<P>(fleet, provider, &connection, &end, &removed).await;
                }
            }
        }
    }
    if noisy {
        sync::<P>(fleet, &connection, &mut statuses, false).await;
    }
    // The last sync, against a quiet provider.
    let end = sync::<P>(fleet, &connection, &mut statuses, case.is_multiple_of(2)).await;
    check::<P>(fleet, provider, &connection, &end, &removed).await;
}

/// One sync of `connection`, its passes full ones if `full`; what it
/// did not reach of the changes scheduled during it happens after it.
async fn sync<P: Provider>(
    fleet: &TestFleet,
    connection: &ConnectionId,
    statuses: &mut Statuses,
    full: bool,
) -> Ended {
    // A forced full pass begins now.
    let started = Utc::now();
    if full {
        force_full::<P>(fleet, connection).await;
    }
    fleet.sync_now(P::CONNECTOR, connection).await;
    let status = statuses.next_end().await;
    fleet.sim.apply_scheduled_changes();
    Ended { status, started }
}

/// How a sync ended, and when it began.
struct Ended {
    status: ConnectionStatus,
    started: DateTime<Utc>,
}

/// Makes the next sync's passes full ones: a full pass that has not read
/// anything yet, as a run stopped at its start would leave it.
async fn force_full<P: Provider>(fleet: &TestFleet, connection: &ConnectionId) {
    for stream in P::STREAMS {
        fleet
            .deps
            .store
            .commit_page(PageCommit {
                tenant: &fleet.tenant,
                connection,
                stream,
                pass: &Pass::begin(true),
                records: &[],
                cursor: None,
                gap: None,
                removed: &[],
                lease: None,
            })
            .await
            .unwrap();
    }
}

/// Checks the stored records against the provider's after a sync
/// against a quiet provider; `removed` are the streams and ids of the
/// records changes removed.
async fn check<P: Provider>(
    fleet: &TestFleet,
    provider: &P,
    connection: &ConnectionId,
    end: &Ended,
    removed: &BTreeSet<(&'static str, String)>,
) {
    let Ended { status, started } = end;
    assert_eq!(
        status.state(),
        ConnectionState::Synced,
        "a sync of a quiet provider is complete: {status:?}"
    );
    let states = fleet
        .deps
        .store
        .stream_states(&fleet.tenant, connection)
        .await
        .unwrap();
    for stream in P::STREAMS {
        let stored = stored(fleet, connection, stream).await;
        let expected = provider.expected(fleet, stream);
        let full = states
            .get(*stream)
            .and_then(|state| state.last_full_at)
            .is_some_and(|at| at >= *started);
        if full || P::removals_reported(stream) {
            assert_eq!(stored, expected, "{stream} after a sync (full: {full})");
            continue;
        }
        for (id, at) in &expected {
            assert_eq!(
                stored.get(id),
                Some(at),
                "{stream} {id} after an incremental sync"
            );
        }
        let kept: Vec<&String> = stored
            .keys()
            .filter(|id| !expected.contains_key(*id))
            .collect();
        assert!(
            kept.iter()
                .all(|id| removed.contains(&(*stream, (*id).clone()))),
            "{stream} keeps records the provider never removed: {kept:?}"
        );
    }
}

/// The live records of `stream`: id and update time.
async fn stored(
    fleet: &TestFleet,
    connection: &ConnectionId,
    stream: &str,
) -> BTreeMap<String, DateTime<Utc>> {
    let mut records = BTreeMap::new();
    let mut after = None;
    loop {
        let page = fleet
            .deps
            .store
            .list_records(RecordQuery {
                tenant: &fleet.tenant,
                connection,
                stream: Some(stream),
                updated_since: None,
                include_deleted: false,
                after: after.as_ref(),
                limit: 1000,
            })
            .await
            .unwrap();
        for record in page.records {
            let at = record.updated_at.expect("every record has an update time");
            records.insert(record.external_id, at);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return records,
        }
    }
}

/// A connection's status events, from its first.
pub(crate) struct Statuses {
    messages: pull::Ordered,
}

impl Statuses {
    pub(crate) async fn watch(fleet: &TestFleet, connection: &ConnectionId) -> Self {
        let consumer = fleet
            .js
            .create_consumer_on_stream(
                pull::OrderedConfig {
                    filter_subject: subject::status(&fleet.tenant, connection),
                    ..Default::default()
                },
                fleet_bus::STATUS_STREAM,
            )
            .await
            .unwrap();
        Self {
            messages: consumer.messages().await.unwrap(),
        }
    }

    /// The next status that ends a sync: `synced` or `partial`.
    pub(crate) async fn next_end(&mut self) -> ConnectionStatus {
        let status = self.next_final().await;
        assert!(
            matches!(
                status,
                ConnectionStatus::Synced { .. } | ConnectionStatus::Partial { .. }
            ),
            "the sync failed: {status:?}"
        );
        status
    }

    /// The next status that ends a setup or a sync, successful or not.
    pub(crate) async fn next_final(&mut self) -> ConnectionStatus {
        let next = async {
            while let Some(Ok(message)) = self.messages.next().await {
                let event = Envelope::<StatusChanged>::decode(&message.payload).unwrap();
                if matches!(
                    event.data.status,
                    ConnectionStatus::Synced { .. }
                        | ConnectionStatus::Partial { .. }
                        | ConnectionStatus::Failed { .. }
                        | ConnectionStatus::Invalid { .. }
                        | ConnectionStatus::ReauthRequired { .. }
                ) {
                    return event.data.status;
                }
            }
            panic!("the status stream ended")
        };
        tokio::time::timeout(DEADLINE, next)
            .await
            .expect("a sync ends in time")
    }
}

// ---------------------------------------------------------------- WordPress

#[derive(Debug, Clone)]
enum PostChange {
    /// An import: posts all modified in one second.
    Import(u32),
    Edit(usize),
    Trash(usize),
    Unpublish(usize),
    Delete(usize),
    /// Publishes again a post trashed or unpublished before.
    Republish(usize),
}

fn post_change() -> impl Strategy<Value = PostChange> + Clone {
    prop_oneof![
        (1..=150_u32).prop_map(PostChange::Import),
        any::<usize>().prop_map(PostChange::Edit),
        any::<usize>().prop_map(PostChange::Trash),
        any::<usize>().prop_map(PostChange::Unpublish),
        any::<usize>().prop_map(PostChange::Delete),
        any::<usize>().prop_map(PostChange::Republish),
    ]
}

#[derive(Default)]
struct WordPress {
    site: String,
    /// Posts trashed or unpublished, which may be published again.
    hidden: Vec<u64>,
}

impl Provider for WordPress {
    type Change = PostChange;
    const CONNECTOR: &'static str = "wordpress";
    const STREAMS: &'static [&'static str] = &["posts"];

    async fn seed(&mut self, fleet: &TestFleet, case: usize) -> Credentials {
        self.site = format!("wp{case}");
        self.hidden.clear();
        let site = SiteConfig::new(&self.site)
            .user(UserConfig::administrator(USER, PASSWORD))
            .posts(90 + u32::try_from(case * 37 % 140).unwrap())
            .utc_offset_minutes([0, -300, 330][case % 3]);
        fleet.sim.add_site(&site).unwrap();
        Credentials::app_password(fleet.sim.site_url(&self.site), USER, PASSWORD)
    }

    fn resolve(&mut self, fleet: &TestFleet, change: &PostChange) -> Option<Resolved> {
        let posts: Vec<u64> = fleet
            .sim
            .published(&self.site, Collection::Posts)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let change = match *change {
            PostChange::Import(count) => SiteChange::Create {
                collection: Collection::Posts,
                count,
                modified_gmt: Some(Utc::now().naive_utc().with_nanosecond(0)?),
            },
            PostChange::Edit(at) => SiteChange::Edit {
                id: pick(&posts, at)?,
            },
            PostChange::Trash(at) => SiteChange::Trash {
                id: pick(&posts, at)?,
            },
            PostChange::Unpublish(at) => SiteChange::Unpublish {
                id: pick(&posts, at)?,
            },
            PostChange::Delete(at) => SiteChange::Delete {
                id: pick(&posts, at)?,
            },
            PostChange::Republish(at) => SiteChange::Publish {
                id: pick(&self.hidden, at)?,
            },
        };
        if let SiteChange::Trash { id } | SiteChange::Unpublish { id } = change {
            self.hidden.push(id);
        }
        Some(Resolved::Site(self.site.clone(), change))
    }

    fn expected(&self, fleet: &TestFleet, _stream: &str) -> BTreeMap<String, DateTime<Utc>> {
        fleet
            .sim
            .published(&self.site, Collection::Posts)
            .into_iter()
            .map(|(id, modified)| (id.to_string(), modified.and_utc()))
            .collect()
    }

    fn removals_reported(_stream: &str) -> bool {
        false
    }
}

#[test]
fn wordpress_posts_are_stored_exactly_through_random_changes_and_syncs() {
    check_property(TestFleet::start, WordPress::default(), post_change());
}

// ---------------------------------------------------------------- FluentCRM

#[derive(Debug, Clone)]
enum CrmChange {
    /// An import: contacts all created in one second.
    Import(u32),
    Edit(usize),
    Delete(usize),
    CreateLists(u32),
    EditList(usize),
    DeleteList(usize),
}

fn crm_change() -> impl Strategy<Value = CrmChange> + Clone {
    prop_oneof![
        (1..=150_u32).prop_map(CrmChange::Import),
        any::<usize>().prop_map(CrmChange::Edit),
        any::<usize>().prop_map(CrmChange::Delete),
        (1..=3_u32).prop_map(CrmChange::CreateLists),
        any::<usize>().prop_map(CrmChange::EditList),
        any::<usize>().prop_map(CrmChange::DeleteList),
    ]
}

#[derive(Default)]
struct FluentCrm {
    site: String,
}

impl Provider for FluentCrm {
    type Change = CrmChange;
    const CONNECTOR: &'static str = "fluentcrm";
    const STREAMS: &'static [&'static str] = &["subscribers", "lists"];

    async fn seed(&mut self, fleet: &TestFleet, case: usize) -> Credentials {
        self.site = format!("crm{case}");
        let subscribers = 90 + u32::try_from(case * 41 % 140).unwrap();
        let lists = u32::try_from(case % 5).unwrap();
        let site = SiteConfig::new(&self.site)
            .user(UserConfig::administrator(USER, PASSWORD))
            .fluentcrm(subscribers, lists)
            .utc_offset_minutes([-300, 330, 0][case % 3]);
        fleet.sim.add_site(&site).unwrap();
        Credentials::app_password(fleet.sim.site_url(&self.site), USER, PASSWORD)
    }

    fn resolve(&mut self, fleet: &TestFleet, change: &CrmChange) -> Option<Resolved> {
        let ids = |of: Vec<(u64, chrono::NaiveDateTime)>| -> Vec<u64> {
            of.into_iter().map(|(id, _)| id).collect()
        };
        let contacts = ids(fleet.sim.subscribers(&self.site));
        let lists = ids(fleet.sim.crm_lists(&self.site));
        let change = match *change {
            CrmChange::Import(count) => SiteChange::CreateSubscribers { count },
            CrmChange::Edit(at) => SiteChange::EditSubscriber {
                id: pick(&contacts, at)?,
            },
            CrmChange::Delete(at) => SiteChange::DeleteSubscriber {
                id: pick(&contacts, at)?,
            },
            CrmChange::CreateLists(count) => SiteChange::CreateLists { count },
            CrmChange::EditList(at) => SiteChange::EditList {
                id: pick(&lists, at)?,
            },
            CrmChange::DeleteList(at) => SiteChange::DeleteList {
                id: pick(&lists, at)?,
            },
        };
        Some(Resolved::Site(self.site.clone(), change))
    }

    fn expected(&self, fleet: &TestFleet, stream: &str) -> BTreeMap<String, DateTime<Utc>> {
        let records = match stream {
            "subscribers" => fleet.sim.subscribers(&self.site),
            _ => fleet.sim.crm_lists(&self.site),
        };
        // Site time, read as UTC (docs/syncing.md).
        records
            .into_iter()
            .map(|(id, updated)| (id.to_string(), updated.and_utc()))
            .collect()
    }

    fn removals_reported(_stream: &str) -> bool {
        false
    }
}

#[test]
fn fluentcrm_contacts_and_lists_are_stored_exactly_through_random_changes_and_syncs() {
    check_property(TestFleet::start, FluentCrm::default(), crm_change());
}

// ---------------------------------------------------------------- Trello

/// The Trello member every case reseeds.
pub(crate) const MEMBER: &str = "ada";

/// Trello pointed at the simulator, four cards a page.
pub(crate) const TRELLO_CATALOG: &str = "page_size = 4\n\
    [api_base_urls]\napi = \"{trello}/1\"\n\
    [oauth1]\nrequest_token_url = \"{trello}/1/OAuthGetRequestToken\"\n\
    authorize_url = \"{trello}/1/OAuthAuthorizeToken\"\n\
    access_token_url = \"{trello}/1/OAuthGetAccessToken\"\n";

#[derive(Debug, Clone)]
enum CardChange {
    /// Cards created in one second on a board.
    Create {
        board: usize,
        count: u32,
    },
    Edit(usize),
    Archive(usize),
    Delete(usize),
    Move {
        card: usize,
        board: usize,
    },
    CloseBoard(usize),
}

fn card_change() -> impl Strategy<Value = CardChange> + Clone {
    prop_oneof![
        3 => (any::<usize>(), 1..=9_u32).prop_map(|(board, count)| CardChange::Create { board, count }),
        3 => any::<usize>().prop_map(CardChange::Edit),
        2 => any::<usize>().prop_map(CardChange::Archive),
        2 => any::<usize>().prop_map(CardChange::Delete),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(card, board)| CardChange::Move { card, board }),
        1 => any::<usize>().prop_map(CardChange::CloseBoard),
    ]
}

#[derive(Default)]
struct Trello {
    /// Ada's token, kept across cases (reseeding her keeps it working).
    credentials: Option<Credentials>,
}

impl Provider for Trello {
    type Change = CardChange;
    const CONNECTOR: &'static str = "trello";
    const ORIGIN: SetupOrigin = SetupOrigin::Oauth;
    const STREAMS: &'static [&'static str] = &["boards", "cards"];

    async fn seed(&mut self, fleet: &TestFleet, case: usize) -> Credentials {
        let member = [case * 5 % 13, case * 7 % 11, case % 6]
            .into_iter()
            .fold(TrelloMemberConfig::new(MEMBER), |member, cards| {
                member.board(u32::try_from(cards).unwrap())
            });
        fleet.sim.set_trello_member(&member);
        fleet.sim.set_trello_limits(100_000, 100_000);
        if self.credentials.is_none() {
            self.credentials = Some(trello_consent(fleet).await);
        }
        self.credentials.clone().unwrap()
    }

    fn resolve(&mut self, fleet: &TestFleet, change: &CardChange) -> Option<Resolved> {
        let ids = |of: Vec<(String, DateTime<Utc>)>| -> Vec<String> {
            of.into_iter().map(|(id, _)| id).collect()
        };
        let cards = ids(fleet.sim.trello_cards(MEMBER));
        let boards = ids(fleet.sim.trello_boards(MEMBER));
        let change = match *change {
            CardChange::Create { board, count } => TrelloChange::CreateCards {
                board: pick(&boards, board)?,
                count,
            },
            CardChange::Edit(at) => TrelloChange::EditCard {
                card: pick(&cards, at)?,
            },
            CardChange::Archive(at) => TrelloChange::ArchiveCard {
                card: pick(&cards, at)?,
            },
            CardChange::Delete(at) => TrelloChange::DeleteCard {
                card: pick(&cards, at)?,
            },
            CardChange::Move { card, board } => TrelloChange::MoveCard {
                card: pick(&cards, card)?,
                board: pick(&boards, board)?,
            },
            CardChange::CloseBoard(at) => TrelloChange::CloseBoard {
                board: pick(&boards, at)?,
            },
        };
        Some(Resolved::Trello(change))
    }

    fn expected(&self, fleet: &TestFleet, stream: &str) -> BTreeMap<String, DateTime<Utc>> {
        let records = match stream {
            "boards" => fleet.sim.trello_boards(MEMBER),
            _ => fleet.sim.trello_cards(MEMBER),
        };
        records.into_iter().collect()
    }

    fn removals_reported(_stream: &str) -> bool {
        true
    }
}

/// Ada's consent to Trello, as the gateway's OAuth 1.0a flow gets it.
pub(crate) async fn trello_consent(fleet: &TestFleet) -> Credentials {
    let client = fleet
        .deps
        .connectors
        .oauth1(&ConnectorId::parse("trello").unwrap())
        .unwrap();
    let callback = url::Url::parse("https://fleet.example.test/oauth/callback").unwrap();
    let request = client.request_token(&callback).await.unwrap();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(request.authorize_url.clone())
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let verifier = location
        .query_pairs()
        .find(|(key, _)| key == "oauth_verifier")
        .map(|(_, value)| value.into_owned())
        .expect("a verifier");
    client
        .access_token(&request.token, &request.secret, &verifier)
        .await
        .unwrap()
}

#[test]
fn trello_boards_and_cards_are_stored_exactly_through_random_changes_and_syncs() {
    check_property(
        async || TestFleet::start_with_catalog("trello", TRELLO_CATALOG).await,
        Trello::default(),
        card_change(),
    );
}
