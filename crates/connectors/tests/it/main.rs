//! The connectors against the provider simulator, and WordPress against a
//! real WordPress.

mod catalog;
mod egress;
mod fluentcrm;
mod google_analytics;
mod helpers;
mod linkedin;
mod meta;
mod oauth2;
mod real_wordpress;
mod resilience;
mod trello;
mod wordpress;
