//! Free loopback ports.

use std::net::{Ipv4Addr, TcpListener};

use crate::process::StartError;

/// How many times a server start is tried on fresh ports when its port was taken.
const PORT_ATTEMPTS: u32 = 3;

/// Returns a loopback port that is free at the time of the call.
///
/// The kernel picks the port from its ephemeral range, so it is never a standard
/// service port. Another process can take it before the caller binds it; the
/// server guards retry on fresh ports when that happens.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// Returns `N` distinct loopback ports that are free at the time of the call.
///
/// # Panics
///
/// Panics when no loopback port can be bound.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    // All listeners stay open until every port is read, so the ports differ.
    let listeners: [TcpListener; N] = std::array::from_fn(|_| {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a free loopback port: {e}"))
    });
    listeners.map(|listener| {
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read a bound port: {e}"))
            .port()
    })
}

/// Counts the starts of one server, to retry on fresh ports when a port was taken.
#[derive(Debug, Default)]
pub(crate) struct PortAttempts(u32);

impl PortAttempts {
    /// Accepts a failed start for another try on fresh ports.
    ///
    /// # Panics
    ///
    /// Panics with the server's log tail when the start failed for another reason
    /// than a taken port, or when the ports were taken on every attempt.
    pub(crate) fn retry(&mut self, error: &StartError) {
        self.0 += 1;
        if !error.port_taken || self.0 >= PORT_ATTEMPTS {
            panic!("{error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(port_taken: bool) -> StartError {
        StartError {
            port_taken,
            message: "nats-server exited".to_owned(),
        }
    }

    #[test]
    fn free_ports_are_distinct() {
        let [first, second, third] = free_ports();
        assert!(first != second && second != third && first != third);
    }

    #[test]
    fn taken_ports_are_retried_until_the_attempts_run_out() {
        let mut attempts = PortAttempts::default();
        for _ in 1..PORT_ATTEMPTS {
            attempts.retry(&failure(true));
        }
        let last = std::panic::catch_unwind(move || attempts.retry(&failure(true)));
        assert!(last.is_err());
    }

    #[test]
    #[should_panic(expected = "nats-server exited")]
    fn other_failures_are_not_retried() {
        PortAttempts::default().retry(&failure(false));
    }
}
