//! The catalog: every built-in connector by id.

use std::{collections::BTreeMap, sync::Arc};

use fleet_events::ConnectorId;

use crate::{
    BuildError, Config, Connector, fluentcrm::FluentCrm, http::Http, wordpress::WordPress,
};

/// Every built-in connector, by [`ConnectorId`]. Cheap to clone; the
/// connectors share one HTTP client (and its connection pool).
#[derive(Debug, Clone)]
pub struct Registry {
    connectors: BTreeMap<ConnectorId, Arc<dyn Connector>>,
}

impl Registry {
    /// Builds every connector with the HTTP settings of `config`.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the HTTP client cannot be built, such as for a
    /// User-Agent that is not a valid header value.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let http = Http::new(config)?;
        let connectors: [Arc<dyn Connector>; 2] = [
            Arc::new(WordPress::new(http.clone())),
            Arc::new(FluentCrm::new(http)),
        ];
        Ok(Self {
            connectors: connectors
                .into_iter()
                .map(|connector| (connector.id().clone(), connector))
                .collect(),
        })
    }

    /// The connector with catalog id `id`, if there is one.
    pub fn get(&self, id: &ConnectorId) -> Option<Arc<dyn Connector>> {
        self.connectors.get(id).cloned()
    }

    /// Every connector, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Connector>> {
        self.connectors.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_holds_wordpress_and_fluentcrm() {
        let registry = Registry::new(&Config::default()).unwrap();

        let ids: Vec<_> = registry.iter().map(|c| c.id().as_str()).collect();
        assert_eq!(ids, ["fluentcrm", "wordpress"]);
        let wordpress = registry
            .get(&ConnectorId::parse("wordpress").unwrap())
            .unwrap();
        let streams: Vec<_> = wordpress.streams().iter().map(|s| s.name).collect();
        assert_eq!(streams, ["posts", "pages"]);
        assert!(
            registry
                .get(&ConnectorId::parse("trello").unwrap())
                .is_none()
        );
    }

    #[test]
    fn invalid_user_agent_fails_the_build() {
        let config = Config {
            user_agent: "bad\nagent".to_owned(),
            ..Config::default()
        };

        assert!(Registry::new(&config).is_err());
    }
}
