use fleet_events::{ConnectionId, TenantId};

use crate::Version;

/// The secrets of one connection.
#[derive(Debug)]
pub(crate) struct Keys<'a> {
    /// Every version of the connection's credentials: the one staged at setup, then each
    /// rotation. PostgreSQL records which version is in use.
    pub(crate) credentials: Key<'a>,
    /// Legacy layout: credentials waiting for validation, one KV version per attempt.
    pub(crate) staged: Key<'a>,
    /// Legacy layout: the credentials in use.
    pub(crate) active: Key<'a>,
    /// The prefix all of them share, ending in `/`.
    pub(crate) prefix: String,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(mount: &'a str, tenant: &TenantId, connection: &ConnectionId) -> Self {
        let prefix = format!("tenants/{tenant}/connections/{connection}");
        Self {
            credentials: Key {
                mount,
                path: format!("{prefix}/credentials"),
            },
            staged: Key {
                mount,
                path: format!("{prefix}/staged"),
            },
            active: Key {
                mount,
                path: format!("{prefix}/active"),
            },
            prefix: format!("{prefix}/"),
        }
    }
}

/// One secret: a KV v2 mount and a path inside it.
///
/// Tenant and connection ids are `[A-Za-z0-9_-]+` by construction, so they are safe path
/// segments and the path needs no escaping.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    mount: &'a str,
    path: String,
}

impl<'a> Key<'a> {
    pub(crate) fn mount(&self) -> &'a str {
        self.mount
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The secret's data path as the HTTP API names it: `secret/data/tenants/…/active`.
    pub(crate) fn data(&self) -> String {
        self.api("data")
    }

    /// The data path of one version (`secret/data/tenants/…/staged?version=3`), or of the latest.
    pub(crate) fn at(&self, version: Option<Version>) -> String {
        match version {
            Some(version) => format!("{}?version={version}", self.data()),
            None => self.data(),
        }
    }

    /// The secret's path under another KV v2 endpoint (`metadata`, `destroy`), as policies name it.
    pub(crate) fn api(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}/{}", self.mount, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_tenant_and_connection_layout() {
        let tenant = TenantId::parse("acme").unwrap();
        let connection = ConnectionId::parse("c-1").unwrap();

        let keys = Keys::new("kv", &tenant, &connection);

        assert_eq!(keys.staged.mount(), "kv");
        assert_eq!(keys.staged.path(), "tenants/acme/connections/c-1/staged");
        assert_eq!(
            keys.credentials.at(Some(Version::new(2))),
            "kv/data/tenants/acme/connections/c-1/credentials?version=2"
        );
        assert!(keys.credentials.path().starts_with(&keys.prefix));
        assert_eq!(
            keys.active.data(),
            "kv/data/tenants/acme/connections/c-1/active"
        );
        assert_eq!(
            keys.staged.at(Some(Version::new(3))),
            "kv/data/tenants/acme/connections/c-1/staged?version=3"
        );
        assert_eq!(
            keys.active.api("metadata"),
            "kv/metadata/tenants/acme/connections/c-1/active"
        );
    }
}
