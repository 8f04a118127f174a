use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;

/// Ports of the servers that run on developer machines and CI hosts.
pub(crate) const STANDARD_PORTS: [u16; 3] = [4222, 5432, 8200];

/// Asserts that nothing listens on `port` and that `dir` is gone.
pub(crate) fn assert_stopped_and_removed(port: u16, dir: &Path) {
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "port {port} still accepts connections"
    );
    assert!(!dir.exists(), "{} still exists", dir.display());
}
