-- Which version of the connection's credentials secret in Vault is in use.
-- (Only version numbers: no column holds a credential.)
--
-- Each connection has one KV v2 secret in Vault, `credentials`, and every
-- write to it is a new, immutable version: the gateway stages the first,
-- each token renewal writes the next. These columns say which version is
-- which, so that promoting validated credentials and moving on after a
-- renewal are updates of this row (check-and-set on `vault_version`),
-- ordered with the rest of the connection's state, and a worker can read
-- exactly the version in use (from its cache when it has read it before).
--
-- vault_staged:  the version the gateway staged at setup; a save
--                request for any later version is not one of ours.
-- vault_version: the version in use; NULL until the save step
--                promotes the staged version, and for connections set
--                up before this layout (their credentials are still
--                in the legacy `active` secret until a worker adopts
--                them).
-- vault_lineage: the staged version the version in use descends from;
--                a save request for an older one changes nothing.
ALTER TABLE connections
    ADD COLUMN vault_staged bigint,
    ADD COLUMN vault_version bigint,
    ADD COLUMN vault_lineage bigint;

-- The save request that promoted the version in use. A save request is
-- carried out again when it is redelivered (its first attempt may have
-- stopped after the promotion), but another request for the version already
-- promoted, as a validation repeated after the deduplication window sends,
-- changes nothing and asks for no second sync.
ALTER TABLE connections ADD COLUMN vault_promoted_by uuid;
