//! The connectors against the provider simulator.

mod fluentcrm;
mod helpers;
mod resilience;
mod wordpress;
