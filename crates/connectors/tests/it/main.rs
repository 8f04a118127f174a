//! The connectors against the provider simulator.

mod catalog;
mod fluentcrm;
mod google_analytics;
mod helpers;
mod oauth2;
mod resilience;
mod wordpress;
