//! The process's limit on open files, which bounds the sessions it holds.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises this process's soft limit on open files to its hard limit, and
/// returns the limit now in force (`None`: unlimited).
///
/// Every session holds a socket, and the usual soft limit (1024) caps a
/// bridge at about a thousand dashboards; the hard limit, set by the
/// operator (`ulimit -Hn`, systemd's `LimitNOFILE=`, the container
/// runtime), is the real budget. `fleet bridge` calls this at start.
///
/// # Errors
///
/// The system refused the new limit; the old one stays.
pub fn raise_open_files_limit() -> std::io::Result<Option<u64>> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return Ok(limit.current);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(limit.maximum)
}
