//! The connectors against the provider simulator, and WordPress against a
//! real WordPress.

mod aws_sigv4;
mod catalog;
mod egress;
mod fluentcrm;
mod fuzz_corpus;
mod google_analytics;
mod helpers;
mod linkedin;
mod meta;
mod nango;
mod oauth2;
mod oauth2_catalog;
mod real_wordpress;
mod record_schemas;
mod report_windows;
mod resilience;
mod trello;
mod typed_in_catalog;
mod wordpress;
