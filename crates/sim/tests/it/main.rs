//! The simulator over HTTP, as connectors and other processes see it.

mod acme;
mod control;
mod fluentcrm;
mod google;
mod helpers;
mod lago;
mod linkedin;
mod meta;
mod trello;
mod wordpress;
