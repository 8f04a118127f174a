//! The simulated providers, one module each: its routes, its state and
//! what it does differently from the others. The OAuth 2.0 providers
//! (Google, Meta, LinkedIn, and Acme, a generic one whose apps choose
//! their token-request rules) describe their authorization server as
//! [`Quirks`](crate::oauth::Quirks) of the shared one in [`crate::oauth`];
//! Trello speaks OAuth 1.0a, which is its own. Keyed takes typed-in
//! credentials: API keys, HTTP Basic and client credentials.

pub(crate) mod acme;
pub(crate) mod fluentcrm;
pub(crate) mod google;
pub(crate) mod keyed;
pub(crate) mod linkedin;
pub(crate) mod meta;
pub(crate) mod trello;
pub(crate) mod wordpress;
