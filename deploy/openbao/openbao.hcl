# OpenBao server configuration for docker-compose.yml.
#
# Integrated (raft) storage on the `openbao-data` volume, so every
# connection's credentials survive restarts and `docker compose down`
# (but not `down -v`). One node; plain HTTP on the compose network only,
# which is not published to the host. Production runs OpenBao or Vault with
# TLS, several raft nodes and auto-unseal (docs/deployment.md).

storage "raft" {
  path    = "/openbao/file"
  node_id = "openbao-0"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}

api_addr     = "http://openbao:8200"
cluster_addr = "http://openbao:8201"

# Recommended with integrated storage, whose files are memory-mapped; the
# container then needs no IPC_LOCK. Run hosts without swap (or with
# encrypted swap) so secrets in memory do not reach the disk.
disable_mlock = true

ui = false
