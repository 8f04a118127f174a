# connector-fleet workers: what `fleet worker` (every step) may do in
# Vault/OpenBao. A process that runs only some steps can do with less:
# validate reads `staged`; save reads `staged`, writes `active` and
# destroys the promoted `staged` version; sync reads `active` and writes
# it when it renews an OAuth token.
#
# Paths are for the KV v2 mount `secret` (FLEET_VAULT__MOUNT); change the
# first path segment for another mount.

# Validate and save read the staged credentials.
path "secret/data/tenants/+/connections/+/staged" {
  capabilities = ["read"]
}

# Save destroys the staged version it promoted.
path "secret/destroy/tenants/+/connections/+/staged" {
  capabilities = ["update"]
}

# Save promotes into `active` (check-and-set); sync reads it and rotates
# renewed OAuth tokens into it.
path "secret/data/tenants/+/connections/+/active" {
  capabilities = ["create", "read", "update"]
}
