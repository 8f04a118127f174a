//! Trello over its REST API (`/1`), with OAuth 1.0a signed requests:
//! the member's open boards and their cards, the cards whole or changed
//! since a time (found in the boards' activity).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use fleet_events::ConnectorId;
use reqwest::Method;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

use crate::{
    Account, Credentials, Error, Page, Record, StreamSpec,
    catalog::{CatalogEntry, CatalogError, OAuth1Settings},
    http::{self, Classify, Failure, Http},
    oauth1,
    providers::{self, Provider, fields},
};

/// Display name in messages.
const PROVIDER: &str = "Trello";

/// Cards per request when the catalog entry sets no `page_size`: the most
/// `/boards/{id}/cards` returns.
const MAX_CARDS: u32 = 1000;

/// How much earlier than the last complete pass an incremental pass reads
/// the boards' activity: clock skew between the fleet and Trello, and
/// cards changed while the last pass ran.
const INCREMENTAL_OVERLAP: TimeDelta = TimeDelta::minutes(10);

/// Actions per request: the most `/boards/{id}/actions` returns.
const MAX_ACTIONS: usize = 1000;

/// Requests of one board's activity an incremental pass makes before it
/// reads the board's cards whole instead.
const MAX_ACTION_PAGES: usize = 5;

/// Changed cards of one board an incremental pass asks for one by one; a
/// board with more is read whole.
const FETCH_SINGLY: usize = 20;

/// Skipped objects a gap names before it counts the rest.
const MAX_NAMED: usize = 5;

/// The cards' stream, the one read incrementally.
const CARDS: &str = "cards";

mod changes;
mod errors;

use changes::{Action, Changes};

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: "boards",
        description: "The member's open boards",
        reconcile: true,
    },
    StreamSpec {
        name: CARDS,
        description: "The cards of the member's open boards, board by board, newest first",
        reconcile: true,
    },
];

/// The Trello connector.
///
/// Validation reads `/members/me`: the member id is the [`Account::id`].
/// `boards` is one page (`/members/me/boards?filter=open`, a bare array),
/// read whole every time. `cards` is read whole or incrementally; see
/// [`Cursor`]. Records are keyed by Trello's 24-hex object ids and dated
/// by `dateLastActivity`.
///
/// A 404 or a 401 on one board or card (deleted during the sync, or the
/// member lost access to it) skips that object with a warning, and the
/// pass reports a gap naming it; a 401 means re-authorisation only when
/// the token itself is refused (`/members/me` answers 401 too).
#[derive(Debug)]
pub(crate) struct Trello {
    id: ConnectorId,
    api: Url,
    page_size: u32,
    client: oauth1::Client,
    http: Http,
}

impl Trello {
    /// The connector of catalog entry `entry`, which must declare the `api`
    /// base URL; `settings` are its OAuth 1.0a settings.
    pub(crate) fn new(
        entry: &CatalogEntry,
        settings: &OAuth1Settings,
        http: Http,
    ) -> Result<Self, CatalogError> {
        let api = entry
            .api_base_url("api")
            .cloned()
            .ok_or_else(|| CatalogError::Invalid {
                id: entry.id.to_string(),
                problem: "needs api_base_urls.api",
            })?;
        Ok(Self {
            id: entry.id.clone(),
            api,
            page_size: entry.page_size.unwrap_or(MAX_CARDS).min(MAX_CARDS),
            client: oauth1::Client::new(
                entry.id.clone(),
                entry.display_name.clone(),
                settings.clone(),
                http.clone(),
            ),
            http,
        })
    }
}

/// Where a `cards` pass stands.
///
/// A full pass lists the open boards on its first page and keeps their ids
/// in the cursor, then reads each board's cards newest first with `limit`
/// and `before=<oldest id seen>`; a page shorter than `limit` ends the
/// board. Ids are unique and fixed, so cards removed during the pass shift
/// nothing; cards created during it are newer than its position and come
/// with the next pass.
///
/// An incremental pass (`since`) lists every board (`filter=all`) and
/// visits only the open ones whose `dateLastActivity` is not before
/// `since`. For each it reads the board's actions since `since`, asks for
/// the cards they name one by one (`/cards/{id}`: an archived card, one
/// moved to a board outside the stream, or a 404 has left the stream),
/// and reads the board whole where the actions cannot say which cards
/// changed (a list archived or moved, the board reopened or copied, the
/// member added, more than [`FETCH_SINGLY`] cards or
/// [`MAX_ACTION_PAGES`] pages of actions). When anything may have left
/// the stream (a card deleted, archived or moved away, a list or board
/// archived), the pass ends by counting the open cards of the open boards
/// (`fields=id`), and that count is the page's `total`, which the caller
/// compares with what it stored to find deletions.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The boards the pass reads: every open board, or in an incremental
    /// pass those with activity since `since`.
    boards: Vec<String>,
    /// Their names, for messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    names: Vec<String>,
    /// The board being read (in `boards`, or in `open` while counting).
    board: usize,
    /// The oldest card id read from it so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<String>,
    /// Whether the boards have been listed (`boards` may be empty).
    #[serde(default, skip_serializing_if = "is_false")]
    listed: bool,
    /// An incremental pass: what changed since this time (UTC, overlap
    /// included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<DateTime<Utc>>,
    /// Incremental: every open board; cards elsewhere are not in the
    /// stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    open: Vec<String>,
    /// Incremental: the current board is read whole.
    #[serde(default, skip_serializing_if = "is_false")]
    whole: bool,
    /// Incremental: something may have left the stream.
    #[serde(default, skip_serializing_if = "is_false")]
    removals: bool,
    /// Incremental, at its end: the open cards counted so far, board by
    /// board of `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counted: Option<u64>,
    /// Boards and cards skipped, and why, for the pass's gap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_false(value: &bool) -> bool {
    !*value
}

impl Cursor {
    /// Moves on to the next board.
    fn next_board(&mut self) {
        self.board += 1;
        self.before = None;
        self.whole = false;
    }

    /// The name of the board being read, for messages.
    fn board_name(&self) -> String {
        let id = self.boards.get(self.board).map_or("", String::as_str);
        match self.names.get(self.board).map(|name| name.trim()) {
            Some(name) if !name.is_empty() => {
                format!("board \"{}\"", crate::text::cap(name, 80))
            }
            _ => format!("board {id}"),
        }
    }

    /// Skips the board being read, because of `why`.
    fn skip_board(&mut self, why: &Skipped) {
        let name = self.board_name();
        tracing::warn!(board = %name, reason = %why, "Skipped a Trello board the sync could not read.");
        self.skipped.push(format!("{name} ({why})"));
        self.next_board();
    }

    /// The gap of a pass that skipped objects.
    fn gap(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut named = self.skipped[..self.skipped.len().min(MAX_NAMED)].join(", ");
        if self.skipped.len() > MAX_NAMED {
            named.push_str(&format!(" and {} more", self.skipped.len() - MAX_NAMED));
        }
        Some(format!(
            "Trello did not let the sync read {named}; what it skipped stays as last synced"
        ))
    }
}

/// Why a board or card could not be read.
#[derive(Debug)]
enum Skipped {
    /// A 404: deleted (during the sync, or since its activity was read).
    Deleted,
    /// A 401 while the token works: the member may not read it.
    Denied(String),
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deleted => f.write_str("deleted during the sync"),
            Self::Denied(message) => write!(f, "access refused: {message}"),
        }
    }
}

/// A board or card asked for by id.
enum Fetched<T> {
    Found(T),
    Gone(Skipped),
}

/// The fields of `/members/me` validation reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    full_name: String,
}

/// The fields a board or card is keyed, dated and placed by.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    id: String,
    #[serde(default)]
    date_last_activity: Option<String>,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    name: String,
    /// A card's board.
    #[serde(default)]
    id_board: Option<String>,
}

impl Keys {
    fn last_activity(&self) -> Option<DateTime<Utc>> {
        self.date_last_activity
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    }
}

impl Provider for Trello {
    type Cursor = Cursor;
    const STREAMS: &'static [StreamSpec] = &STREAMS;

    fn id(&self) -> &ConnectorId {
        &self.id
    }

    async fn validate(&self, credentials: &Credentials) -> Result<Account, Error> {
        let member: Member = self
            .get(credentials, self.endpoint(&["members", "me"], &[]))
            .await?;
        let name = match (member.full_name.trim(), member.username.as_str()) {
            ("", "") => member.id.clone(),
            ("", username) => format!("@{username}"),
            (full_name, "") => full_name.to_owned(),
            (full_name, username) => format!("{full_name} (@{username})"),
        };
        Ok(Account::new(&member.id, &name))
    }

    fn first(&self, _stream: &StreamSpec) -> Cursor {
        Cursor::default()
    }

    /// Cards changed since `since`, from the boards' activity; `boards`
    /// (one request) is read whole every time.
    fn incremental(&self, stream: &StreamSpec, since: DateTime<Utc>) -> Option<Cursor> {
        (stream.name == CARDS).then(|| Cursor {
            since: Some(since - INCREMENTAL_OVERLAP),
            ..Cursor::default()
        })
    }

    async fn page(
        &self,
        credentials: &Credentials,
        stream: &StreamSpec,
        cursor: Cursor,
    ) -> Result<Page, Error> {
        if stream.name == CARDS {
            return self.cards(credentials, cursor).await;
        }
        let boards = self.boards(credentials, "open").await?;
        Ok(Page {
            records: boards.into_iter().map(record).collect(),
            ..Page::finished()
        })
    }
}

impl Trello {
    /// The member's boards, `filter`ed (`open`, `all`), as Trello sent
    /// them.
    async fn boards(&self, credentials: &Credentials, filter: &str) -> Result<Vec<Item>, Error> {
        let url = self.endpoint(&["members", "me", "boards"], &[("filter", filter)]);
        self.get(credentials, url).await
    }

    /// One page of the `cards` pass at `cursor`.
    async fn cards(&self, credentials: &Credentials, mut cursor: Cursor) -> Result<Page, Error> {
        // Cursors of passes begun before `listed` existed list their boards.
        if !cursor.listed && cursor.boards.is_empty() {
            self.list_boards(credentials, &mut cursor).await?;
        }
        let (records, removed) = if cursor.counted.is_some() {
            self.count_board(credentials, &mut cursor).await?;
            (Vec::new(), Vec::new())
        } else if cursor.board >= cursor.boards.len() {
            (Vec::new(), Vec::new())
        } else if cursor.since.is_some() && !cursor.whole {
            self.board_changes(credentials, &mut cursor).await?
        } else {
            (
                self.board_cards(credentials, &mut cursor).await?,
                Vec::new(),
            )
        };
        let read = cursor.board >= cursor.boards.len();
        if read && cursor.counted.is_none() && cursor.since.is_some() && cursor.removals {
            // Something may have left the stream: count what it holds.
            cursor.counted = Some(0);
            cursor.board = 0;
            cursor.before = None;
        }
        let done = match cursor.counted {
            Some(_) => cursor.board >= cursor.open.len(),
            None => read,
        };
        if !done {
            return Ok(Page {
                records,
                next: Some(providers::encode(&cursor)),
                removed,
                ..Page::finished()
            });
        }
        Ok(Page {
            records,
            total: cursor.counted,
            gap: cursor.gap(),
            removed,
            ..Page::finished()
        })
    }

    /// Lists the boards a pass reads: every open one, or in an incremental
    /// pass the open ones with activity since `since` (a board archived
    /// since then means its cards left the stream).
    async fn list_boards(
        &self,
        credentials: &Credentials,
        cursor: &mut Cursor,
    ) -> Result<(), Error> {
        cursor.listed = true;
        let Some(since) = cursor.since else {
            for board in self.boards(credentials, "open").await? {
                cursor.boards.push(board.keys.id);
                cursor.names.push(board.keys.name);
            }
            return Ok(());
        };
        for board in self.boards(credentials, "all").await? {
            let active = board.keys.last_activity().is_none_or(|at| at >= since);
            if board.keys.closed {
                cursor.removals |= active;
                continue;
            }
            cursor.open.push(board.keys.id.clone());
            if active {
                cursor.boards.push(board.keys.id);
                cursor.names.push(board.keys.name);
            }
        }
        Ok(())
    }

    /// The next page of the current board's open cards, newest first.
    async fn board_cards(
        &self,
        credentials: &Credentials,
        cursor: &mut Cursor,
    ) -> Result<Vec<Record>, Error> {
        let board = cursor.boards[cursor.board].clone();
        let limit = self.page_size.to_string();
        let mut query = vec![("limit", limit.as_str())];
        query.extend(cursor.before.as_deref().map(|before| ("before", before)));
        let url = self.endpoint(&["boards", &board, "cards"], &query);
        let cards: Vec<Item> = match self.get_object(credentials, url).await? {
            Fetched::Found(cards) => cards,
            Fetched::Gone(why) => {
                cursor.skip_board(&why);
                return Ok(Vec::new());
            }
        };
        let full = cards.len() >= self.page_size as usize;
        // Newest first, so the smallest id is the oldest card read.
        match cards.iter().map(|card| card.keys.id.clone()).min() {
            Some(oldest) if full => cursor.before = Some(oldest),
            _ => cursor.next_board(),
        }
        Ok(cards
            .into_iter()
            .filter(|card| !card.keys.closed)
            .map(record)
            .collect())
    }

    /// The cards of the current board that its actions since
    /// `cursor.since` name, or its first page of cards when they cannot
    /// say.
    ///
    /// Returns the records read and the ids of the cards that left the
    /// stream (deleted, archived, moved off the member's open boards).
    async fn board_changes(
        &self,
        credentials: &Credentials,
        cursor: &mut Cursor,
    ) -> Result<(Vec<Record>, Vec<String>), Error> {
        let board = cursor.boards[cursor.board].clone();
        let since = cursor.since.unwrap_or_default();
        let changes = match self.actions(credentials, &board, since).await? {
            Fetched::Found(Some(actions)) => Changes::of(&actions),
            // Too busy to go through action by action.
            Fetched::Found(None) => Changes {
                whole: true,
                removals: true,
                ..Changes::default()
            },
            Fetched::Gone(why) => {
                cursor.skip_board(&why);
                return Ok((Vec::new(), Vec::new()));
            }
        };
        let mut removed: Vec<String> = changes.deleted.iter().cloned().collect();
        if changes.whole || changes.cards.len() > FETCH_SINGLY {
            cursor.removals |= changes.removals;
            cursor.whole = true;
            cursor.before = None;
            return Ok((self.board_cards(credentials, cursor).await?, removed));
        }
        // Every card named is asked for below, so each one that left is
        // known by its id.
        let mut records = Vec::new();
        for card in changes.cards {
            let url = self.endpoint(&["cards", &card], &[]);
            match self.get_object::<Item>(credentials, url).await? {
                Fetched::Found(item) => match item.keys.id_board.as_deref() {
                    Some(on) if !item.keys.closed && on == board => records.push(record(item)),
                    // Moved to another open board: read there, where the
                    // move is in the activity too.
                    Some(on) if !item.keys.closed && cursor.open.iter().any(|open| open == on) => {}
                    _ => removed.push(card),
                },
                Fetched::Gone(Skipped::Deleted) => removed.push(card),
                Fetched::Gone(why) => {
                    tracing::warn!(card, reason = %why, "Skipped a Trello card the sync could not read.");
                    cursor.skipped.push(format!("card {card} ({why})"));
                }
            }
        }
        cursor.next_board();
        Ok((records, removed))
    }

    /// Board `board`'s actions since `since`, newest first; `None` when
    /// there are more than [`MAX_ACTION_PAGES`] pages of them.
    async fn actions(
        &self,
        credentials: &Credentials,
        board: &str,
        since: DateTime<Utc>,
    ) -> Result<Fetched<Option<Vec<Action>>>, Error> {
        let since = since.to_rfc3339_opts(SecondsFormat::Millis, true);
        let limit = MAX_ACTIONS.to_string();
        let mut actions = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..MAX_ACTION_PAGES {
            let mut query = vec![
                ("filter", "all"),
                ("since", since.as_str()),
                ("limit", limit.as_str()),
                ("fields", "type,date,data"),
                ("memberCreator", "false"),
            ];
            query.extend(before.as_deref().map(|before| ("before", before)));
            let url = self.endpoint(&["boards", board, "actions"], &query);
            let page: Vec<Action> = match self.get_object(credentials, url).await? {
                Fetched::Found(page) => page,
                Fetched::Gone(why) => return Ok(Fetched::Gone(why)),
            };
            let full = page.len() >= MAX_ACTIONS;
            before = page.iter().map(|action| action.id.clone()).min();
            actions.extend(page);
            if !full {
                return Ok(Fetched::Found(Some(actions)));
            }
        }
        Ok(Fetched::Found(None))
    }

    /// Counts the open cards of the open board `cursor.board` (ids only),
    /// adding them to `cursor.counted`. A board gone meanwhile counts none.
    async fn count_board(
        &self,
        credentials: &Credentials,
        cursor: &mut Cursor,
    ) -> Result<(), Error> {
        let board = cursor.open[cursor.board].clone();
        let limit = MAX_CARDS.to_string();
        // One request per page of the pass, so the run's budget applies.
        let mut query = vec![("fields", "id,closed"), ("limit", limit.as_str())];
        query.extend(cursor.before.as_deref().map(|before| ("before", before)));
        let url = self.endpoint(&["boards", &board, "cards"], &query);
        let cards = match self.get_object::<Vec<Item>>(credentials, url).await? {
            Fetched::Found(cards) => cards,
            Fetched::Gone(_) => Vec::new(),
        };
        let open = cards.iter().filter(|card| !card.keys.closed).count() as u64;
        cursor.counted = Some(cursor.counted.unwrap_or(0) + open);
        let oldest = cards.iter().map(|card| card.keys.id.clone()).min();
        match oldest {
            // A full page whose oldest card is older than the last page's
            // (a server that ignores `before` would repeat itself).
            Some(oldest)
                if cards.len() >= MAX_CARDS as usize
                    && cursor
                        .before
                        .as_deref()
                        .is_none_or(|before| oldest.as_str() < before) =>
            {
                cursor.before = Some(oldest);
            }
            _ => {
                cursor.board += 1;
                cursor.before = None;
            }
        }
        Ok(())
    }

    /// GETs one board's or card's `url` like [`get`](Self::get), telling a
    /// board or card that is gone (404) or closed to the member (401 while
    /// the token still works) from a failure of the whole sync.
    async fn get_object<T: DeserializeOwned>(
        &self,
        credentials: &Credentials,
        url: Url,
    ) -> Result<Fetched<T>, Error> {
        match self.get(credentials, url).await {
            Ok(found) => Ok(Fetched::Found(found)),
            Err(Error::Rejected { status: 404, .. }) => Ok(Fetched::Gone(Skipped::Deleted)),
            Err(Error::TokenRejected { message, .. }) if !errors::refuses_token(&message) => {
                // The token, or this object? Ask whose token it is: a 401
                // there too is the token's, and ends the sync.
                let _: Member = self
                    .get(credentials, self.endpoint(&["members", "me"], &[]))
                    .await?;
                Ok(Fetched::Gone(Skipped::Denied(message)))
            }
            Err(error) => Err(error),
        }
    }

    /// `segments` below the API root, with `query`.
    fn endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("API base URLs are http(s) URLs")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GETs `url`, signed with `credentials`, and decodes its JSON body,
    /// retrying transient failures (each attempt signed anew).
    async fn get<T: DeserializeOwned>(
        &self,
        credentials: &Credentials,
        url: Url,
    ) -> Result<T, Error> {
        let request = || {
            let authorization = self.client.sign(&Method::GET, &url, credentials)?;
            let mut request = self.http.get(url.clone());
            if let Credentials::OAuth1 { token, .. } = credentials {
                request = request.sends_secret(token);
            }
            Ok(request.header(reqwest::header::AUTHORIZATION, authorization))
        };
        Ok(self.http.fetch(self, &url, request).await?.body)
    }
}

/// Trello's answers: 401 bodies are plain text (`invalid token`, `invalid
/// key`, `unauthorized permission requested`) and mean the user has to
/// reconnect; 429 bodies are JSON and carry no `Retry-After`.
impl Classify for Trello {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn site(&self, _url: &Url) -> String {
        http::display_url(&self.api)
    }

    fn recognise(&self, failure: &Failure<'_>) -> Option<Error> {
        errors::rate_limited(&self.api, failure)
    }

    fn reject(&self, failure: &Failure<'_>) -> Error {
        errors::rejected(failure)
    }
}

/// A board or card: its keys, and the whole item as the payload.
type Item = fields::Item<Keys>;

/// A board or card as a record, keyed by its id and dated by
/// `dateLastActivity` (ISO 8601 with milliseconds and `Z`).
fn record(Item { keys, payload }: Item) -> Record {
    Record {
        updated_at: keys.last_activity(),
        external_id: keys.id,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    #[test]
    fn a_gap_names_the_first_skipped_objects_and_counts_the_rest() {
        let cursor = Cursor {
            skipped: (1..=7).map(|n| format!("board {n} (gone)")).collect(),
            ..Cursor::default()
        };

        let gap = cursor.gap().unwrap();

        assert!(gap.contains("board 5 (gone) and 2 more;"), "{gap}");
        assert!(!gap.contains("board 6"), "{gap}");
        assert_eq!(Cursor::default().gap(), None);
    }
    #[test]
    fn items_become_records_dated_by_last_activity() {
        let item: Item = serde_json::from_value(json!({
            "id": "65a1b2c3d4e5f60718293a4b",
            "name": "Card 1",
            "dateLastActivity": "2024-01-01T08:00:00.000Z",
        }))
        .unwrap();

        let record = record(item);

        assert_eq!(record.external_id, "65a1b2c3d4e5f60718293a4b");
        assert_eq!(
            record.updated_at.map(|at| at.to_rfc3339()),
            Some("2024-01-01T08:00:00+00:00".to_owned())
        );
        assert_eq!(record.payload["name"], "Card 1");
    }
}
