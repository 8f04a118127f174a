//! How many sessions one token, and one client address, may hold open.
//!
//! A session takes a [`Permit`] under its client address when its request
//! arrives (before it authenticates, so unauthenticated sockets count too)
//! and one under its token once the token is checked; dropping a permit
//! gives its place back.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// What sessions are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// A client address; an IPv6 one by its /64, which one subscriber
    /// usually holds whole.
    Address(IpAddr),
    /// A token, by a keyed hash of its text: the token itself is not kept.
    Token(u64),
}

/// The open sessions by token and by address, and their limits.
#[derive(Debug)]
pub(crate) struct Admission {
    per_token: usize,
    per_address: usize,
    hasher: RandomState,
    open: Mutex<HashMap<Key, usize>>,
}

/// A limit a new session would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The token holds this many sessions already.
    Token(usize),
    /// The client address holds this many sessions already.
    Address(usize),
}

impl Full {
    /// Why the session is refused, for its client.
    pub(crate) fn reason(self) -> String {
        match self {
            Self::Token(max) => format!(
                "this token already holds {max} open sessions, the most it may; close one first"
            ),
            Self::Address(max) => format!(
                "{max} sessions are already open from this address, the most it may; close one first"
            ),
        }
    }
}

/// A session's place under one limit; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Permit {
    held: Option<(Arc<Admission>, Key)>,
}

impl Admission {
    /// Limits of `per_token` and `per_address` sessions; 0 is no limit.
    pub(crate) fn new(per_token: usize, per_address: usize) -> Self {
        Self {
            per_token,
            per_address,
            hasher: RandomState::new(),
            open: Mutex::default(),
        }
    }

    /// A place for one more session from `address`; any when it is not
    /// known.
    ///
    /// # Errors
    ///
    /// [`Full::Address`] when the address holds its limit already.
    pub(crate) fn address(self: &Arc<Self>, address: Option<IpAddr>) -> Result<Permit, Full> {
        let Some(address) = address else {
            return Ok(Permit { held: None });
        };
        let key = Key::Address(counted(address));
        self.admit(key, self.per_address).map_err(Full::Address)
    }

    /// A place for one more session holding `token`.
    ///
    /// # Errors
    ///
    /// [`Full::Token`] when the token holds its limit already.
    pub(crate) fn token(self: &Arc<Self>, token: &str) -> Result<Permit, Full> {
        let key = Key::Token(self.hasher.hash_one(token));
        self.admit(key, self.per_token).map_err(Full::Token)
    }

    fn admit(self: &Arc<Self>, key: Key, max: usize) -> Result<Permit, usize> {
        if max == 0 {
            return Ok(Permit { held: None });
        }
        let mut open = self.lock();
        let count = open.entry(key).or_default();
        if *count >= max {
            return Err(max);
        }
        *count += 1;
        Ok(Permit {
            held: Some((Arc::clone(self), key)),
        })
    }

    fn release(&self, key: Key) {
        let mut open = self.lock();
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((admission, key)) = self.held.take() {
            admission.release(key);
        }
    }
}

/// The address `address` counts as: itself for IPv4 (also when mapped into
/// IPv6), its /64 for IPv6.
fn counted(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_comes_back_when_its_permit_is_dropped() {
        let admission = Arc::new(Admission::new(2, 0));

        let first = admission.token("t").unwrap();
        let _second = admission.token("t").unwrap();
        assert_eq!(admission.token("t").unwrap_err(), Full::Token(2));
        assert!(admission.token("other").is_ok());
        drop(first);

        assert!(admission.token("t").is_ok());
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let admission = Arc::new(Admission::new(0, 1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();

        let _held = admission.address(Some(one)).unwrap();
        let _v4 = admission.address(Some(v4)).unwrap();

        assert_eq!(
            admission.address(Some(same_64)).unwrap_err(),
            Full::Address(1)
        );
        assert_eq!(
            admission.address(Some(mapped)).unwrap_err(),
            Full::Address(1)
        );
        assert!(admission.address(None).is_ok());
    }

    #[test]
    fn zero_is_no_limit() {
        let admission = Arc::new(Admission::new(0, 0));

        let held: Vec<_> = (0..100).map(|_| admission.token("t").unwrap()).collect();

        assert_eq!(held.len(), 100);
        assert!(admission.lock().is_empty());
    }
}
