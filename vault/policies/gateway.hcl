# connector-fleet gateway: what `fleet gateway` may do in Vault/OpenBao.
#
# Paths are for the KV v2 mount `secret` (FLEET_VAULT__MOUNT); change the
# first path segment for another mount. Credentials live at
# tenants/<tenant>/connections/<connection>/credentials, one KV version per
# write; PostgreSQL records which version is in use.

# Stage a new connection's credentials, typed in by a user or returned by an
# OAuth flow, as the secret's first version. `create` without `update`: the
# gateway can start a secret but never add a version to an existing one.
# It reads the credentials in use to revoke the grant at the provider when
# the user disconnects.
path "secret/data/tenants/+/connections/+/credentials" {
  capabilities = ["create", "read"]
}

# Connections set up before the one-secret layout: read to revoke.
path "secret/data/tenants/+/connections/+/active" {
  capabilities = ["read"]
}

# Legacy, for a rolling upgrade only: a gateway of an earlier release stages
# credentials here. Remove once no process of an earlier release runs.
path "secret/data/tenants/+/connections/+/staged" {
  capabilities = ["create", "update"]
}

# Delete a disconnected connection's credentials, every version.
path "secret/metadata/tenants/+/connections/+/credentials" {
  capabilities = ["delete"]
}
path "secret/metadata/tenants/+/connections/+/staged" {
  capabilities = ["delete"]
}
path "secret/metadata/tenants/+/connections/+/active" {
  capabilities = ["delete"]
}
