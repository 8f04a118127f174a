# connector-fleet gateway: what `fleet gateway` may do in Vault/OpenBao.
#
# Paths are for the KV v2 mount `secret` (FLEET_VAULT__MOUNT); change the
# first path segment for another mount. Credentials live at
# tenants/<tenant>/connections/<connection>/{staged,active}.

# Stage credentials typed in by a user or returned by an OAuth flow; the
# validate step reads them, the save step promotes them.
path "secret/data/tenants/+/connections/+/staged" {
  capabilities = ["create", "update"]
}

# Read a connection's active credentials to revoke its grant at the
# provider when the user disconnects it. The gateway never writes them.
path "secret/data/tenants/+/connections/+/active" {
  capabilities = ["read"]
}

# Delete a disconnected connection's credentials, every version.
path "secret/metadata/tenants/+/connections/+/staged" {
  capabilities = ["delete"]
}
path "secret/metadata/tenants/+/connections/+/active" {
  capabilities = ["delete"]
}
