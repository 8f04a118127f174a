//! Changes to a simulated WordPress site's content, as its editors and
//! importers make them: the provider-side changes that break syncs (bulk
//! creates sharing a modification second, edits, trashing, unpublishing,
//! deletion), applied at once or while a sync is paging.

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
}
