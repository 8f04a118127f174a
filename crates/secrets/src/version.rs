use std::fmt;

use serde::{Deserialize, Serialize};

/// A KV v2 version number of one secret.
///
/// Versions start at 1 and only grow, even when a version is destroyed, so a version names one
/// write for as long as the secret's metadata exists. Version 0 means "no version": a
/// check-and-set write expecting 0 succeeds only when the secret does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(u64);

impl Version {
    /// The version numbered `n`, as events carry it.
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The version number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
