//! Signing tenant tokens with the configured issuer key: `fleet token`, and
//! the operator commands that call the gateway's API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// A token to sign.
#[derive(Debug)]
pub(crate) struct Request {
    /// The tenant it is for.
    pub(crate) tenant: String,
    /// How long it lasts.
    pub(crate) ttl: Duration,
    /// Who holds it (`sub`).
    pub(crate) user: Option<String>,
    /// The connections it is narrowed to; all when empty.
    pub(crate) connections: Vec<String>,
    /// The issuer's PEM private key, for EdDSA and RS256.
    pub(crate) private_key_file: Option<PathBuf>,
    /// The `kid` to put in the header.
    pub(crate) key_id: Option<String>,
}

/// Signs `request` with the token settings from the environment
/// (`FLEET_AUTH__*`), and nothing else.
pub(crate) fn sign(request: &Request) -> anyhow::Result<String> {
    let auth = crate::config::Config::auth_from_env()?.context(
        "token settings are required to sign a token: FLEET_AUTH__KEY, or FLEET_AUTH__ALGORITHM with --private-key-file",
    )?;
    let signer = match &request.private_key_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the private key {}", path.display()))?;
            fleet_auth::Signer::with_private_key(&auth, &pem.into())?
        }
        None if auth.algorithm != fleet_auth::Algorithm::Hs256 => anyhow::bail!(
            "tokens are signed with {}: pass the issuer's private key with --private-key-file",
            auth.algorithm
        ),
        None => fleet_auth::Signer::new(&auth)?,
    };
    let signer = match &request.key_id {
        Some(key_id) => signer.with_key_id(key_id.clone()),
        None => signer,
    };
    let tenant = fleet_events::TenantId::parse(&request.tenant)?;
    let mut claims = fleet_auth::Claims::for_tenant(tenant, request.ttl);
    claims.subject.clone_from(&request.user);
    if !request.connections.is_empty() {
        let connections = request
            .connections
            .iter()
            .map(|id| fleet_events::ConnectionId::parse(id))
            .collect::<Result<Vec<_>, _>>()?;
        claims.connections = Some(connections);
    }
    Ok(signer.sign(&claims)?)
}
