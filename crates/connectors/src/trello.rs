//! Trello over its REST API (`/1`), with OAuth 1.0a signed requests:
//! the member's open boards and their cards.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_events::ConnectorId;
use futures::{FutureExt as _, future::BoxFuture};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use url::Url;

use crate::{
    Account, Connector, Credentials, Error, Page, Record, StreamSpec,
    catalog::{CatalogEntry, CatalogError, OAuth1Settings},
    http::{self, Http},
    oauth1,
    wp::{self, plain_text},
};

/// Display name in messages.
const PROVIDER: &str = "Trello";

/// Cards per request when the catalog entry sets no `page_size`: the most
/// `/boards/{id}/cards` returns.
const MAX_CARDS: u32 = 1000;

/// How long to wait after a 429 that says nothing usable about its
/// window: Trello's limits are counted per 10 s and 429s carry no
/// `Retry-After`.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

static STREAMS: [StreamSpec; 2] = [
    StreamSpec {
        name: "boards",
        description: "The member's open boards",
        reconcile: true,
    },
    StreamSpec {
        name: "cards",
        description: "The cards of the member's open boards, board by board, newest first",
        reconcile: true,
    },
];

/// The Trello connector.
///
/// Validation reads `/members/me`: the member id is the [`Account::id`].
/// `boards` is one page (`/members/me/boards?filter=open`, a bare array).
/// `cards` lists the open boards on its first page and keeps their ids in
/// the cursor, then reads each board's cards newest first with
/// `limit` and `before=<oldest id seen>`; a page shorter than `limit` ends
/// the board. Records are keyed by Trello's 24-hex object ids and dated by
/// `dateLastActivity`.
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

/// Where a `cards` sync stands: the open boards when it started, the board
/// being read, and the oldest card id read from it so far.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    boards: Vec<String>,
    board: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<String>,
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

/// The fields a board or card is keyed and dated by.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    id: String,
    #[serde(default)]
    date_last_activity: Option<String>,
}

/// Trello's 429 body; other errors are plain text.
#[derive(Deserialize)]
struct LimitBody {
    error: String,
}

impl Connector for Trello {
    fn id(&self) -> &ConnectorId {
        &self.id
    }

    fn streams(&self) -> &[StreamSpec] {
        &STREAMS
    }

    fn validate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Account, Error>> {
        async move {
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
        .boxed()
    }

    fn sync_page<'a>(
        &'a self,
        credentials: &'a Credentials,
        stream: &'a str,
        cursor: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Page, Error>> {
        self.page(credentials, stream, cursor).boxed()
    }
}

impl Trello {
    async fn page(
        &self,
        credentials: &Credentials,
        stream: &str,
        cursor: Option<&Value>,
    ) -> Result<Page, Error> {
        match stream {
            "boards" => {
                let boards = self.open_boards(credentials).await?;
                Ok(Page {
                    records: boards.into_iter().map(record).collect(),
                    next: None,
                    total: None,
                    gap: None,
                    bytes: 0,
                })
            }
            "cards" => {
                let cursor = match cursor {
                    Some(cursor) => {
                        Cursor::deserialize(cursor).map_err(|source| Error::InvalidCursor {
                            connector: self.id.clone(),
                            source,
                        })?
                    }
                    None => self.first_cursor(credentials).await?,
                };
                self.cards(credentials, cursor).await
            }
            _ => Err(Error::UnknownStream {
                connector: self.id.clone(),
                stream: stream.to_owned(),
            }),
        }
    }

    /// The member's open boards, as Trello sent them.
    async fn open_boards(&self, credentials: &Credentials) -> Result<Vec<Item>, Error> {
        let url = self.endpoint(&["members", "me", "boards"], &[("filter", "open")]);
        self.get(credentials, url).await
    }

    /// The cursor of a `cards` sync's first page: every open board, from
    /// the first.
    async fn first_cursor(&self, credentials: &Credentials) -> Result<Cursor, Error> {
        let boards = self.open_boards(credentials).await?;
        Ok(Cursor {
            boards: boards.into_iter().map(|board| board.keys.id).collect(),
            board: 0,
            before: None,
        })
    }

    /// One page of cards at `cursor`.
    async fn cards(&self, credentials: &Credentials, cursor: Cursor) -> Result<Page, Error> {
        let Some(board) = cursor.boards.get(cursor.board) else {
            return Ok(Page::finished());
        };
        let limit = self.page_size.to_string();
        let mut query = vec![("limit", limit.as_str())];
        query.extend(cursor.before.as_deref().map(|before| ("before", before)));
        let url = self.endpoint(&["boards", board, "cards"], &query);
        let cards: Vec<Item> = self.get(credentials, url).await?;
        let full = cards.len() >= self.page_size as usize;
        // Newest first, so the smallest id is the oldest card read.
        let oldest = cards.iter().map(|card| card.keys.id.clone()).min();
        let next = match oldest {
            Some(oldest) if full => Some(Cursor {
                before: Some(oldest),
                ..cursor
            }),
            _ => Some(Cursor {
                board: cursor.board + 1,
                before: None,
                ..cursor
            })
            .filter(|next| next.board < next.boards.len()),
        };
        Ok(Page {
            records: cards.into_iter().map(record).collect(),
            next: next.map(|next| serde_json::to_value(next).expect("a cursor serialises")),
            total: None,
            gap: None,
            bytes: 0,
        })
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
        self.http.retry(|| self.attempt(credentials, &url)).await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        credentials: &Credentials,
        url: &Url,
    ) -> Result<T, Error> {
        let authorization = self.client.sign(&Method::GET, url, credentials)?;
        let response = self
            .http
            .get(url.clone())
            .header(reqwest::header::AUTHORIZATION, authorization)
            .send(PROVIDER)
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.http.body(response, PROVIDER, url).await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|source| Error::invalid_response(PROVIDER, url, &source));
        }
        Err(error(&self.api, url, status, &headers, &body))
    }
}

/// A board or card: its keys, and the whole item as the payload.
struct Item {
    keys: Keys,
    payload: Value,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let payload = Value::deserialize(deserializer)?;
        let keys = Keys::deserialize(&payload).map_err(serde::de::Error::custom)?;
        Ok(Self { keys, payload })
    }
}

/// A board or card as a record, keyed by its id and dated by
/// `dateLastActivity` (ISO 8601 with milliseconds and `Z`).
fn record(Item { keys, payload }: Item) -> Record {
    Record {
        updated_at: keys
            .date_last_activity
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc)),
        external_id: keys.id,
        payload,
    }
}

/// The error for a failed Trello response. 401 bodies are plain text
/// (`invalid token`, `invalid key`, `unauthorized permission requested`)
/// and mean the user has to reconnect; 429 bodies are JSON and carry no
/// `Retry-After`.
fn error(api: &Url, url: &Url, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    if status.is_redirection() {
        return http::redirect_error(PROVIDER, url, status, headers);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Error::RateLimited {
            provider: PROVIDER.to_owned(),
            site: http::display_url(api),
            retry_after: Some(rate_limit_wait(headers, body)),
        };
    }
    if http::is_transient(status) {
        return http::transient_error(PROVIDER, http::display_url(api), status, headers);
    }
    let text = String::from_utf8_lossy(body);
    let message = plain_text(&text);
    if status == StatusCode::UNAUTHORIZED {
        return Error::TokenRejected {
            provider: PROVIDER.to_owned(),
            message: if message.is_empty() {
                "unauthorized".to_owned()
            } else {
                message
            },
        };
    }
    let code = serde_json::from_slice::<LimitBody>(body).map_or_else(
        |_| "unknown".to_owned(),
        |body| crate::text::code(&body.error),
    );
    Error::Rejected {
        provider: PROVIDER.to_owned(),
        url: http::display_url(url),
        status: status.as_u16(),
        code,
        message,
    }
}

/// How long to wait after a 429: the window of the exhausted limit (the
/// token's for `API_TOKEN_LIMIT_EXCEEDED`, the key's for
/// `API_KEY_LIMIT_EXCEEDED`) when its `x-rate-limit-api-*-remaining` is 0
/// and its `-interval-ms` is given, else [`DEFAULT_RATE_LIMIT_WAIT`].
fn rate_limit_wait(headers: &HeaderMap, body: &[u8]) -> Duration {
    let exhausted = serde_json::from_slice::<LimitBody>(body)
        .ok()
        .map(|body| body.error);
    let buckets: &[&str] = match exhausted.as_deref() {
        Some("API_KEY_LIMIT_EXCEEDED") => &["key", "token"],
        _ => &["token", "key"],
    };
    buckets
        .iter()
        .find_map(|bucket| {
            let remaining =
                wp::header_u64(headers, &format!("x-rate-limit-api-{bucket}-remaining"));
            let interval =
                wp::header_u64(headers, &format!("x-rate-limit-api-{bucket}-interval-ms"));
            match (remaining, interval) {
                (Some(0), Some(interval)) if interval > 0 => Some(Duration::from_millis(interval)),
                _ => None,
            }
        })
        .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn api() -> Url {
        Url::parse("https://api.trello.com/1").unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    reqwest::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    const TOKEN_LIMIT: &[u8] =
        br#"{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#;
    const KEY_LIMIT: &[u8] =
        br#"{"error":"API_KEY_LIMIT_EXCEEDED","message":"Rate limit exceeded"}"#;

    #[test]
    fn a_429_without_rate_limit_headers_waits_ten_seconds() {
        let error = error(
            &api(),
            &api(),
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            TOKEN_LIMIT,
        );

        assert_eq!(
            error.class(),
            crate::ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(10))
            }
        );
    }

    #[test]
    fn an_exhausted_bucket_waits_its_interval() {
        let headers = headers(&[
            ("x-rate-limit-api-token-interval-ms", "10000"),
            ("x-rate-limit-api-token-remaining", "3"),
            ("x-rate-limit-api-key-interval-ms", "1500"),
            ("x-rate-limit-api-key-remaining", "0"),
        ]);

        assert_eq!(
            rate_limit_wait(&headers, KEY_LIMIT),
            Duration::from_millis(1500)
        );
        assert_eq!(
            rate_limit_wait(&headers, TOKEN_LIMIT),
            Duration::from_millis(1500)
        );
        let unexhausted = super::tests::headers(&[
            ("x-rate-limit-api-token-interval-ms", "2000"),
            ("x-rate-limit-api-token-remaining", "5"),
        ]);
        assert_eq!(
            rate_limit_wait(&unexhausted, TOKEN_LIMIT),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }

    #[test]
    fn plain_text_401s_ask_for_a_reconnect() {
        for body in [
            "invalid token",
            "invalid key",
            "unauthorized permission requested",
        ] {
            let error = error(
                &api(),
                &api(),
                StatusCode::UNAUTHORIZED,
                &HeaderMap::new(),
                body.as_bytes(),
            );

            assert_eq!(error.class(), crate::ErrorClass::ReauthRequired);
            assert!(!error.wants_token_refresh());
            assert!(error.to_string().contains(body), "{error}");
        }
    }

    #[test]
    fn other_refusals_keep_the_plain_text_message() {
        let url = Url::parse("https://api.trello.com/1/boards/x/cards?limit=5").unwrap();

        let error = error(
            &api(),
            &url,
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            b"invalid id",
        );

        assert_eq!(
            error.to_string(),
            "Trello refused the request to https://api.trello.com/1/boards/x/cards with HTTP 400 \
             (unknown: invalid id)"
        );
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
