//! What a board's activity says changed: the cards to ask for again, and
//! whether the board must be read whole or cards may have left.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

/// An entry of a board's activity (`/boards/{id}/actions`).
#[derive(Deserialize)]
pub(super) struct Action {
    pub(super) id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: ActionData,
}

#[derive(Default, Deserialize)]
struct ActionData {
    #[serde(default)]
    card: Option<Reference>,
    /// The fields the action changed, with their old values.
    #[serde(default)]
    old: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct Reference {
    id: String,
}

/// What a board's actions since a time say about its cards.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Changes {
    /// The cards to ask for, in id order.
    pub(super) cards: BTreeSet<String>,
    /// The actions cannot say which cards changed: read the board whole.
    pub(super) whole: bool,
    /// Cards may have left the stream (the actions cannot say which).
    pub(super) removals: bool,
    /// Cards the actions say were deleted.
    pub(super) deleted: BTreeSet<String>,
}

impl Changes {
    pub(super) fn of(actions: &[Action]) -> Self {
        let mut changes = Self::default();
        for action in actions {
            let old = |field: &str| {
                action
                    .data
                    .old
                    .as_ref()
                    .is_some_and(|old| old.contains_key(field))
            };
            let card = action.data.card.as_ref().map(|card| card.id.clone());
            match (action.kind.as_str(), card) {
                ("deleteCard", Some(card)) => {
                    changes.deleted.insert(card);
                }
                ("updateList", _) if old("closed") || old("idBoard") => {
                    changes.whole = true;
                    changes.removals = true;
                }
                ("updateBoard", _) if old("closed") => {
                    changes.whole = true;
                    changes.removals = true;
                }
                ("moveListFromBoard" | "moveListToBoard", _) => {
                    changes.whole = true;
                    changes.removals = true;
                }
                ("addMemberToBoard" | "copyBoard" | "createBoard", _) => changes.whole = true,
                (kind, Some(card)) => {
                    changes.removals |= kind == "moveCardFromBoard" || old("closed");
                    changes.cards.insert(card);
                }
                _ => {}
            }
        }
        let deleted = &changes.deleted;
        changes.cards.retain(|card| !deleted.contains(card));
        changes
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn actions(actions: Value) -> Vec<Action> {
        serde_json::from_value(actions).unwrap()
    }
    #[test]
    fn actions_name_the_cards_to_ask_for_and_whether_any_left() {
        let changes = Changes::of(&actions(json!([
            {"id": "a6", "type": "commentCard", "data": {"card": {"id": "c1"}, "text": "hi"}},
            {"id": "a5", "type": "updateCard", "data": {"card": {"id": "c2"}, "old": {"name": "x"}}},
            {"id": "a4", "type": "deleteCard", "data": {"card": {"id": "c3"}}},
            {"id": "a3", "type": "createCard", "data": {"card": {"id": "c3"}}},
            {"id": "a2", "type": "updateBoard", "data": {"old": {"name": "Old name"}}},
        ])));

        assert_eq!(
            changes,
            Changes {
                cards: ["c1", "c2"].map(str::to_owned).into(),
                whole: false,
                // The deleted card is known by its id: nothing to count.
                removals: false,
                deleted: ["c3"].map(str::to_owned).into(),
            }
        );
        let edits = Changes::of(&actions(json!([
            {"id": "a1", "type": "updateCard", "data": {"card": {"id": "c1"}, "old": {"idList": "l"}}},
        ])));
        assert!(!edits.removals && !edits.whole);
    }
    #[test]
    fn cards_archived_or_moved_away_may_have_left_and_are_asked_for() {
        for (kind, old) in [
            ("updateCard", json!({"closed": false})),
            ("moveCardFromBoard", Value::Null),
        ] {
            let changes = Changes::of(&actions(json!([
                {"id": "a1", "type": kind, "data": {"card": {"id": "c1"}, "old": old}},
            ])));

            assert!(changes.removals && !changes.whole, "{kind}");
            assert_eq!(changes.cards.len(), 1, "{kind}");
        }
    }
    #[test]
    fn lists_archived_or_moved_and_boards_reopened_or_joined_need_a_whole_read() {
        for action in [
            json!({"id": "a1", "type": "updateList", "data": {"old": {"closed": false}}}),
            json!({"id": "a1", "type": "updateList", "data": {"old": {"idBoard": "b0"}}}),
            json!({"id": "a1", "type": "moveListToBoard", "data": {}}),
            json!({"id": "a1", "type": "updateBoard", "data": {"old": {"closed": true}}}),
            json!({"id": "a1", "type": "addMemberToBoard", "data": {}}),
        ] {
            let changes = Changes::of(&actions(json!([action.clone()])));

            assert!(changes.whole, "{action}");
        }
    }
}
