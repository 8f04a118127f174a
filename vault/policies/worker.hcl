# connector-fleet workers: what `fleet worker` (every step) may do in
# Vault/OpenBao. A process that runs only some steps can do with less:
# validate reads the staged version; save needs nothing (promotion is a
# PostgreSQL update); sync reads the version in use, and when it renews an
# OAuth token writes the next version and destroys the one it replaced.
#
# Paths are for the KV v2 mount `secret` (FLEET_VAULT__MOUNT); change the
# first path segment for another mount.

# Read any version; write renewed tokens as a new version. `create` is for
# connections set up before the one-secret layout, whose credentials a
# worker copies into it the first time it meets them.
path "secret/data/tenants/+/connections/+/credentials" {
  capabilities = ["create", "read", "update"]
}

# Destroy the versions a rotation replaced (or a lost rotation wrote).
path "secret/destroy/tenants/+/connections/+/credentials" {
  capabilities = ["update"]
}

# Connections set up before the one-secret layout: read their credentials
# once to copy them, then delete the old secrets.
# (`create` and `update` on `active` and the `destroy` of `staged` are
# legacy, for a rolling upgrade only: workers of an earlier release promote
# into `active` and destroy the promoted `staged` version. Once no process
# of an earlier release runs, `active` needs only `read` and the `destroy`
# block can go.)
path "secret/data/tenants/+/connections/+/staged" {
  capabilities = ["read"]
}
path "secret/data/tenants/+/connections/+/active" {
  capabilities = ["create", "read", "update"]
}
path "secret/destroy/tenants/+/connections/+/staged" {
  capabilities = ["update"]
}
path "secret/metadata/tenants/+/connections/+/staged" {
  capabilities = ["delete"]
}
path "secret/metadata/tenants/+/connections/+/active" {
  capabilities = ["delete"]
}
