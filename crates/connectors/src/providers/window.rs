//! The day windows of the report streams (Google Analytics, Meta,
//! LinkedIn): an incremental pass reads again the days its provider may
//! still revise, within bounds.

use chrono::{DateTime, Days, NaiveDate, Utc};

/// The furthest back an incremental pass reaches, in days before today:
/// after a pause longer than this, older days stay as they were read.
pub(crate) const MAX_LOOKBACK_DAYS: u64 = 365;

/// The first day an incremental pass at `now` reads when the last
/// complete pass began at `since`: `reopen` days before the UTC date of
/// `since`, at most [`MAX_LOOKBACK_DAYS`] before today, and never after
/// yesterday (a `since` ahead of the fleet's clock must not make the
/// range empty).
pub(crate) fn reopened_since(since: DateTime<Utc>, now: DateTime<Utc>, reopen: u64) -> NaiveDate {
    let today = now.date_naive();
    (since.date_naive() - Days::new(reopen))
        .max(today - Days::new(MAX_LOOKBACK_DAYS))
        .min(today - Days::new(1))
}
