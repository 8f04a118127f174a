//! The providers: what each third-party API asks for and answers, behind
//! one [`Connector`](crate::Connector) implementation.

mod bearer;
pub(crate) mod fluentcrm;
pub(crate) mod generic_oauth2;
pub(crate) mod google_analytics;
pub(crate) mod linkedin;
pub(crate) mod meta;
pub(crate) mod trello;
pub(crate) mod wordpress;
mod wp;
