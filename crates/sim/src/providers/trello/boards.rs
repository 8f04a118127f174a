//! Trello's content: members, their boards, the boards' cards, and the
//! actions (Trello's activity feed) every change leaves on a board.
//!
//! Ids are 24-hex object ids whose first 8 hex digits are the creation
//! time in seconds, then the kind (so members, boards, lists, cards and
//! actions never share an id) and a sequence number, so ids sort by
//! creation, as Trello's do.

use chrono::{DateTime, NaiveDate, SubsecRound as _, TimeDelta, Utc};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{
    TrelloChange,
    config::{TrelloBoardConfig, TrelloMemberConfig},
};

/// Object ids' kinds (hex digits 9 and 10).
const MEMBER: u8 = 1;
const BOARD: u8 = 2;
const LIST: u8 = 3;
const CARD: u8 = 4;
const ACTION: u8 = 5;

/// A member and the boards they belong to.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) username: String,
    pub(super) full_name: String,
    pub(super) boards: Vec<Board>,
    /// Boards the member was removed from: asking for them is a 401.
    pub(super) left: Vec<Board>,
}

#[derive(Debug)]
pub(super) struct Board {
    pub(super) id: String,
    pub(super) list: String,
    pub(super) name: String,
    pub(super) closed: bool,
    pub(super) last_activity: DateTime<Utc>,
    /// In creation (id) order.
    pub(super) cards: Vec<Card>,
    /// Oldest first.
    pub(super) actions: Vec<Action>,
}

#[derive(Debug, Clone)]
pub(super) struct Card {
    pub(super) id: String,
    pub(super) number: u32,
    pub(super) name: String,
    pub(super) last_activity: DateTime<Utc>,
    /// Archived: not among the board's open cards.
    pub(super) closed: bool,
}

/// One entry of a board's activity feed.
#[derive(Debug)]
pub(super) struct Action {
    pub(super) id: String,
    pub(super) kind: &'static str,
    pub(super) date: DateTime<Utc>,
    pub(super) data: Value,
}

/// The moment seeded content starts from.
pub(super) fn epoch() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|date| date.and_hms_opt(8, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// A 24-hex object id: the creation time in seconds (8 hex digits), the
/// kind (2) and a sequence number (14), so ids sort by creation.
fn object_id(created: DateTime<Utc>, kind: u8, sequence: u64) -> String {
    format!("{:08x}{kind:02x}{sequence:014x}", created.timestamp())
}

/// ISO 8601 with milliseconds and `Z`, as Trello writes dates.
pub(super) fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A short link: 8 characters derived from an id, as Trello's are.
fn short_link(id: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    Sha256::digest(id.as_bytes())
        .iter()
        .take(8)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// Makes the ids of one simulated Trello unique.
#[derive(Debug, Default)]
pub(super) struct Ids {
    sequence: u64,
}

impl Ids {
    fn next(&mut self, created: DateTime<Utc>, kind: u8) -> String {
        self.sequence += 1;
        object_id(created, kind, self.sequence)
    }
}

/// The `index`th member of a configuration, seeded deterministically.
pub(super) fn seed_member(config: &TrelloMemberConfig, index: i64, ids: &mut Ids) -> Member {
    let joined = epoch() - TimeDelta::days(30) + TimeDelta::hours(index);
    let id = ids.next(joined, MEMBER);
    let boards = config
        .boards
        .iter()
        .zip(0_i64..)
        .map(|(board, n)| seed_board(board, epoch() + TimeDelta::days(index * 30 + n), n, ids))
        .collect();
    let mut full_name = config.username.clone();
    if let Some(first) = full_name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    Member {
        id,
        username: config.username.clone(),
        full_name,
        boards,
        left: Vec::new(),
    }
}

fn seed_board(config: &TrelloBoardConfig, created: DateTime<Utc>, n: i64, ids: &mut Ids) -> Board {
    let cards: Vec<Card> = (1..=config.cards)
        .map(|number| {
            let created = created + TimeDelta::minutes(i64::from(number));
            Card {
                id: ids.next(created, CARD),
                number,
                name: format!("Card {number}"),
                last_activity: created + TimeDelta::hours(i64::from(number * 37 % 101)),
                closed: false,
            }
        })
        .collect();
    let last_activity = cards
        .iter()
        .map(|card| card.last_activity)
        .max()
        .unwrap_or(created);
    Board {
        id: ids.next(created, BOARD),
        list: ids.next(created, LIST),
        name: format!("Board {}", n + 1),
        closed: config.closed,
        last_activity,
        cards,
        actions: Vec::new(),
    }
}

impl Member {
    pub(super) fn json(&self, scope: &str) -> Value {
        let initials: String = self.full_name.chars().take(1).collect();
        let mut body = json!({
            "id": self.id,
            "username": self.username,
            "fullName": self.full_name,
            "initials": initials.to_uppercase(),
            "url": format!("https://trello.com/{}", self.username),
            "idBoards": self.boards.iter().map(|board| board.id.clone()).collect::<Vec<_>>(),
            "confirmed": true,
        });
        if scope.split(',').any(|scope| scope == "account") {
            body["email"] = json!(format!("{}@example.test", self.username));
        }
        body
    }

    fn board_mut(&mut self, id: &str) -> Option<&mut Board> {
        self.boards.iter_mut().find(|board| board.id == id)
    }

    /// The index of the board holding card `card`, and the card's index.
    fn find_card(&self, card: &str) -> Option<(usize, usize)> {
        self.boards.iter().enumerate().find_map(|(b, board)| {
            let c = board.cards.iter().position(|c| c.id == card)?;
            Some((b, c))
        })
    }

    /// Applies `change` now; returns the ids created or changed.
    pub(super) fn change(&mut self, change: &TrelloChange, ids: &mut Ids) -> Vec<String> {
        // Trello keeps dates to the millisecond.
        let now = Utc::now().trunc_subsecs(3);
        match change {
            TrelloChange::CreateCards { board, count } => {
                let Some(board) = self.board_mut(board) else {
                    return Vec::new();
                };
                (0..*count)
                    .map(|_| {
                        let number = board.cards.iter().map(|c| c.number).max().unwrap_or(0) + 1;
                        let card = Card {
                            id: ids.next(now, CARD),
                            number,
                            name: format!("Card {number}"),
                            last_activity: now,
                            closed: false,
                        };
                        let data = json!({"card": board.card_ref(&card), "list": board.list_ref(),
                            "board": board.board_ref()});
                        board.record(ids, now, "createCard", data);
                        let id = card.id.clone();
                        board.cards.push(card);
                        id
                    })
                    .collect()
            }
            TrelloChange::EditCard { card } => self.edit_card(card, now, ids, |card| {
                let old = json!({"name": card.name});
                card.name = format!("{} (edited)", card.name.trim_end_matches(" (edited)"));
                old
            }),
            TrelloChange::ArchiveCard { card } => self.edit_card(card, now, ids, |card| {
                card.closed = true;
                json!({"closed": false})
            }),
            TrelloChange::DeleteCard { card } => {
                let Some((b, c)) = self.find_card(card) else {
                    return Vec::new();
                };
                let board = &mut self.boards[b];
                let removed = board.cards.remove(c);
                let data = json!({"card": {"id": removed.id, "idShort": removed.number},
                    "list": board.list_ref(), "board": board.board_ref()});
                board.record(ids, now, "deleteCard", data);
                vec![removed.id]
            }
            TrelloChange::MoveCard { card, board } => self.move_card(card, board, now, ids),
            TrelloChange::CloseBoard { board } => {
                let Some(board) = self.board_mut(board) else {
                    return Vec::new();
                };
                board.closed = true;
                let data = json!({"board": board.board_ref(), "old": {"closed": false}});
                board.record(ids, now, "updateBoard", data);
                vec![board.id.clone()]
            }
            TrelloChange::DeleteBoard { board } => {
                let before = self.boards.len();
                self.boards.retain(|b| b.id != *board);
                if before == self.boards.len() {
                    return Vec::new();
                }
                vec![board.clone()]
            }
            TrelloChange::LeaveBoard { board } => {
                let Some(index) = self.boards.iter().position(|b| b.id == *board) else {
                    return Vec::new();
                };
                let left = self.boards.remove(index);
                self.left.push(left);
                vec![board.clone()]
            }
        }
    }

    /// Changes card `card` with `edit` (which returns the action's `old`)
    /// and records an `updateCard`.
    fn edit_card(
        &mut self,
        card: &str,
        now: DateTime<Utc>,
        ids: &mut Ids,
        edit: impl FnOnce(&mut Card) -> Value,
    ) -> Vec<String> {
        let Some((b, c)) = self.find_card(card) else {
            return Vec::new();
        };
        let board = &mut self.boards[b];
        let old = edit(&mut board.cards[c]);
        board.cards[c].last_activity = now;
        let data = json!({"card": board.card_ref(&board.cards[c]), "old": old,
            "list": board.list_ref(), "board": board.board_ref()});
        board.record(ids, now, "updateCard", data);
        vec![card.to_owned()]
    }

    fn move_card(
        &mut self,
        card: &str,
        target: &str,
        now: DateTime<Utc>,
        ids: &mut Ids,
    ) -> Vec<String> {
        let Some(to) = self.boards.iter().position(|b| b.id == target) else {
            return Vec::new();
        };
        let Some((from, c)) = self.find_card(card).filter(|(from, _)| *from != to) else {
            return Vec::new();
        };
        let mut moved = self.boards[from].cards.remove(c);
        moved.last_activity = now;
        let source = &mut self.boards[from];
        let data = json!({"card": source.card_ref(&moved), "board": source.board_ref(),
            "boardTarget": {"id": target}});
        source.record(ids, now, "moveCardFromBoard", data);
        let source_id = source.id.clone();
        let target = &mut self.boards[to];
        let data = json!({"card": target.card_ref(&moved), "board": target.board_ref(),
            "boardSource": {"id": source_id}, "list": target.list_ref()});
        target.record(ids, now, "moveCardToBoard", data);
        let id = moved.id.clone();
        let position = target.cards.partition_point(|c| c.id < moved.id);
        target.cards.insert(position, moved);
        vec![id]
    }
}

impl Board {
    /// Adds an action to the activity feed and makes it the board's last
    /// activity.
    fn record(&mut self, ids: &mut Ids, now: DateTime<Utc>, kind: &'static str, data: Value) {
        self.actions.push(Action {
            id: ids.next(now, ACTION),
            kind,
            date: now,
            data,
        });
        self.last_activity = now;
    }

    fn board_ref(&self) -> Value {
        json!({"id": self.id, "name": self.name, "shortLink": short_link(&self.id)})
    }

    fn list_ref(&self) -> Value {
        json!({"id": self.list, "name": "To do"})
    }

    fn card_ref(&self, card: &Card) -> Value {
        json!({"id": card.id, "name": card.name, "idShort": card.number,
            "shortLink": short_link(&card.id), "closed": card.closed})
    }

    pub(super) fn json(&self) -> Value {
        let short_link = short_link(&self.id);
        json!({
            "id": self.id,
            "name": self.name,
            "desc": "",
            "closed": self.closed,
            "idOrganization": null,
            "pinned": false,
            "url": format!("https://trello.com/b/{short_link}/board-{}", self.name.len()),
            "shortUrl": format!("https://trello.com/b/{short_link}"),
            "shortLink": short_link,
            "dateLastActivity": iso(self.last_activity),
            "prefs": {"permissionLevel": "private", "background": "blue"},
        })
    }

    pub(super) fn card_json(&self, card: &Card) -> Value {
        let short_link = short_link(&card.id);
        json!({
            "id": card.id,
            "idShort": card.number,
            "name": card.name,
            "desc": "",
            "closed": card.closed,
            "idBoard": self.id,
            "idList": self.list,
            "idMembers": [],
            "labels": [],
            "pos": u64::from(card.number) * 16_384,
            "dateLastActivity": iso(card.last_activity),
            "shortLink": short_link,
            "shortUrl": format!("https://trello.com/c/{short_link}"),
            "url": format!("https://trello.com/c/{short_link}/{}-card-{}", card.number, card.number),
        })
    }

    pub(super) fn action_json(&self, action: &Action, member: &Member) -> Value {
        json!({
            "id": action.id,
            "idMemberCreator": member.id,
            "type": action.kind,
            "date": iso(action.date),
            "data": action.data,
            "appCreator": null,
            "limits": null,
        })
    }
}
