//! The HTTP routes, one module per resource.

pub mod connection_health;
pub mod connections;
pub mod connectors;
pub mod dashboard;
pub mod health;
pub mod oauth;
pub mod records;
pub mod webhooks;
