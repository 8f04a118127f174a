//! Changes to simulated provider content, as editors, importers and
//! colleagues make them: the provider-side changes that break syncs (bulk
//! creates sharing a modification second, edits, trashing, unpublishing,
//! archiving, moving, deletion), applied at once or while a sync is
//! paging. [`SiteChange`] changes a WordPress site (its posts and pages,
//! and its FluentCRM contacts and lists); [`TrelloChange`] changes a
//! Trello member's boards and cards, and records the actions Trello's
//! activity feed shows for it.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// A WordPress collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// `wp/v2/posts`.
    Posts,
    /// `wp/v2/pages`.
    Pages,
}

/// One change to a site's posts or pages. Ids are shared by posts and
/// pages, as in WordPress; a change naming an unknown id does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SiteChange {
    /// `count` new published items with the next ids, all modified at
    /// `modified_gmt` (an import: many share one second), or now.
    Create {
        /// Posts or pages.
        collection: Collection,
        /// How many.
        count: u32,
        /// Their modification time (UTC); now when absent.
        #[serde(default)]
        modified_gmt: Option<NaiveDateTime>,
    },
    /// An edit: a new title, modified now.
    Edit {
        /// The item.
        id: u64,
    },
    /// Moved to the trash (modified now): it leaves the published listing.
    Trash {
        /// The item.
        id: u64,
    },
    /// Back to draft (modified now): it leaves the published listing.
    Unpublish {
        /// The item.
        id: u64,
    },
    /// Published again (modified now).
    Publish {
        /// The item.
        id: u64,
    },
    /// Deleted for good.
    Delete {
        /// The item.
        id: u64,
    },
    /// `count` new FluentCRM contacts with the next ids, all created and
    /// updated now (an import: many share one second).
    CreateSubscribers {
        /// How many.
        count: u32,
    },
    /// A FluentCRM contact edited: a new last name, updated now.
    EditSubscriber {
        /// The contact.
        id: u64,
    },
    /// A FluentCRM contact deleted (FluentCRM deletes contacts for good).
    DeleteSubscriber {
        /// The contact.
        id: u64,
    },
    /// `count` new FluentCRM lists with the next ids, created now.
    CreateLists {
        /// How many.
        count: u32,
    },
    /// A FluentCRM list renamed, updated now.
    EditList {
        /// The list.
        id: u64,
    },
    /// A FluentCRM list deleted.
    DeleteList {
        /// The list.
        id: u64,
    },
}

/// One change to a Trello member's boards and cards, made now by a
/// colleague. Boards and cards are named by their ids; a change naming an
/// unknown one does nothing. Each change adds the actions Trello records
/// for it to the boards' activity (`/1/boards/{id}/actions`) and moves
/// their `dateLastActivity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TrelloChange {
    /// `count` new cards on `board`, created in one second (`createCard`).
    CreateCards {
        /// The board.
        board: String,
        /// How many.
        count: u32,
    },
    /// A card renamed (`updateCard`).
    EditCard {
        /// The card.
        card: String,
    },
    /// A card archived (`updateCard` with `old.closed`): it leaves the
    /// board's open cards.
    ArchiveCard {
        /// The card.
        card: String,
    },
    /// A card deleted for good (`deleteCard`).
    DeleteCard {
        /// The card.
        card: String,
    },
    /// A card moved to another board (`moveCardFromBoard` on the old one,
    /// `moveCardToBoard` on the new one).
    MoveCard {
        /// The card.
        card: String,
        /// The board it moves to.
        board: String,
    },
    /// A board closed (archived; `updateBoard` with `old.closed`): it
    /// leaves the member's open boards, and its cards with it.
    CloseBoard {
        /// The board.
        board: String,
    },
    /// A board deleted for good: asking for it is a 404.
    DeleteBoard {
        /// The board.
        board: String,
    },
    /// The member is removed from a board: it leaves their boards, and
    /// asking for it (or its cards) is a 401.
    LeaveBoard {
        /// The board.
        board: String,
    },
}
