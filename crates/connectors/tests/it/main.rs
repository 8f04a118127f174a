//! The connectors against the provider simulator.

mod catalog;
mod fluentcrm;
mod google_analytics;
mod helpers;
mod linkedin;
mod meta;
mod oauth2;
mod resilience;
mod trello;
mod wordpress;
