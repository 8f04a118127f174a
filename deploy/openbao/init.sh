#!/bin/sh
# One-shot OpenBao set-up for docker-compose.yml (service `openbao-init`).
# Runs on every `docker compose up` and does only what is missing:
#
#   1. initialises OpenBao on its first start, with ONE unseal key, and keeps
#      the unseal key and the root token in $FLEET_BAO_INIT_DIR/init.json
#      (the `openbao-init` volume). FOR LOCAL USE ONLY: whoever can read that
#      volume owns every credential in OpenBao. Production keeps unseal keys
#      apart or unseals automatically (docs/deployment.md);
#   2. unseals it when it is sealed (after every restart of the container);
#   3. enables KV v2 at `secret/` and the AppRole auth method;
#   4. writes the policies vault/policies/{gateway,worker}.hcl as
#      fleet-gateway and fleet-worker, and the AppRoles of the same names,
#      whose role ids are their names;
#   5. hands each service its AppRole secret id: the file `secret_id` in
#      $FLEET_BAO_HANDOVER_DIR/<service>/ (the volumes `vault-gateway` and
#      `vault-worker`, each mounted read-only into its own service only),
#      readable only by the fleet image's user. A secret id that still
#      works is kept; a missing or revoked one is replaced.
#
# The services log in with their AppRole; the root token never leaves the
# `openbao-init` volume.
#
# Settings (environment), with their compose defaults:
#   BAO_ADDR                 http://openbao:8200
#   FLEET_BAO_INIT_DIR       /openbao-init
#   FLEET_BAO_POLICY_DIR     /policies           (vault/policies, read-only)
#   FLEET_BAO_HANDOVER_DIR   /handover
#   FLEET_BAO_SERVICE_USER   65532:65532         (owner of the secret id files)
#   FLEET_BAO_SERVICES       "gateway worker"
set -eu

export BAO_ADDR="${BAO_ADDR:-http://openbao:8200}"
init_dir="${FLEET_BAO_INIT_DIR:-/openbao-init}"
policy_dir="${FLEET_BAO_POLICY_DIR:-/policies}"
handover_dir="${FLEET_BAO_HANDOVER_DIR:-/handover}"
service_user="${FLEET_BAO_SERVICE_USER:-65532:65532}"
services="${FLEET_BAO_SERVICES:-gateway worker}"
init_file="$init_dir/init.json"

log() { printf '[openbao-init] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# `bao status` exits 0 when unsealed, 2 when sealed (or not initialised),
# 1 when it cannot reach the server.
bao_status() {
  rc=0
  bao status > /dev/null 2>&1 || rc=$?
  echo "$rc"
}

log "waiting for OpenBao at $BAO_ADDR"
tries=0
while [ "$(bao_status)" = 1 ]; do
  tries=$((tries + 1))
  [ "$tries" -lt 120 ] || die "OpenBao at $BAO_ADDR did not answer within 120 s"
  sleep 1
done

# 1. Initialise on the first start.
initialised=0
bao operator init -status > /dev/null 2>&1 || initialised=$?
if [ "$initialised" = 2 ]; then
  [ ! -e "$init_file" ] || die "OpenBao is not initialised but $init_file exists: it belongs to another OpenBao; move it away to start afresh"
  mkdir -p "$init_dir"
  chmod 700 "$init_dir"
  (umask 077 && bao operator init -key-shares=1 -key-threshold=1 -format=json > "$init_file.partial")
  mv "$init_file.partial" "$init_file"
  log "=================================================================="
  log "OpenBao initialised. Its unseal key and root token are in"
  log "$init_file (volume openbao-init)."
  log "FOR LOCAL USE ONLY: one key unseals it, and it sits next to the data."
  log "=================================================================="
elif [ "$initialised" != 0 ]; then
  die "cannot ask OpenBao whether it is initialised"
fi
[ -s "$init_file" ] || die "OpenBao is initialised but $init_file is missing: unseal it and set it up by hand, or remove the openbao-data volume to start afresh (every stored credential is lost)"

# `bao operator init -format=json` prints one field per line, each key of
# `unseal_keys_b64` on the line after the field's name.
unseal_key="$(awk '/"unseal_keys_b64"/ { getline; gsub(/[" ,]/, ""); print; exit }' "$init_file")"
root_token="$(sed -n 's/^[[:space:]]*"root_token":[[:space:]]*"\([^"]*\)".*/\1/p' "$init_file")"
[ -n "$unseal_key" ] && [ -n "$root_token" ] || die "$init_file holds no unseal key or root token"

# 2. Unseal.
if [ "$(bao_status)" = 2 ]; then
  log "unsealing OpenBao"
  bao operator unseal "$unseal_key" > /dev/null
fi

export BAO_TOKEN="$root_token"
tries=0
until bao secrets list > /dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || die "OpenBao did not become active within 60 s of unsealing"
  sleep 1
done

# 3. KV v2 for the credentials, AppRole for the services.
if ! bao secrets list -format=json | grep -q '"secret/"'; then
  log "enabling KV v2 at secret/"
  bao secrets enable -path=secret kv-v2 > /dev/null
fi
if ! bao auth list -format=json | grep -q '"approle/"'; then
  log "enabling the AppRole auth method"
  bao auth enable approle > /dev/null
fi

# 4 and 5. A policy, an AppRole and a secret id per service.
owner_uid="${service_user%%:*}"
for svc in $services; do
  role="fleet-$svc"
  [ -f "$policy_dir/$svc.hcl" ] || die "no policy $policy_dir/$svc.hcl"
  bao policy write "$role" "$policy_dir/$svc.hcl" > /dev/null
  # The secret id may be used any number of times and does not expire: the
  # service logs in with it at every start and whenever its token reaches
  # token_max_ttl, and worker replicas share it.
  bao write "auth/approle/role/$role" token_policies="$role" \
    token_ttl=1h token_max_ttl=24h secret_id_ttl=0 secret_id_num_uses=0 > /dev/null
  bao write "auth/approle/role/$role/role-id" role_id="$role" > /dev/null

  dir="$handover_dir/$svc"
  mkdir -p "$dir"
  file="$dir/secret_id"
  # A lookup of an unknown secret id succeeds with no data, so look for the
  # accessor in the answer.
  if [ -s "$file" ] && bao write -format=json "auth/approle/role/$role/secret-id/lookup" \
    secret_id="$(cat "$file")" 2> /dev/null | grep -q '"secret_id_accessor"'; then
    log "$role: role id $role, secret id kept in $file"
  else
    (umask 077 && bao write -f -field=secret_id "auth/approle/role/$role/secret-id" > "$file.partial")
    mv "$file.partial" "$file"
    log "$role: role id $role, new secret id in $file"
  fi
  chown "$service_user" "$dir" "$file"
  chmod 500 "$dir"
  chmod 400 "$file"
  [ "$(stat -c %u "$file")" = "$owner_uid" ] || die "could not give $file to $service_user"
done

log "OpenBao is unsealed and set up: KV v2 at secret/, AppRoles $(for s in $services; do printf 'fleet-%s ' "$s"; done)"
