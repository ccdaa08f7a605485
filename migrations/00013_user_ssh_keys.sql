-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Read model of users' SSH public keys, built by the user_ssh_keys
-- projector from user_ssh_key_added/removed. Public data: the key is kept
-- whole so cloud-init can be given it.
CREATE TABLE user_ssh_keys (
    tenant_id   uuid        NOT NULL,
    key_id      uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    name        text        NOT NULL,
    type        text        NOT NULL,
    fingerprint text        NOT NULL,
    public_key  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX user_ssh_keys_user ON user_ssh_keys (tenant_id, user_id, created_at, key_id);

ALTER TABLE user_ssh_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_ssh_keys FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON user_ssh_keys
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON user_ssh_keys TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE user_ssh_keys;
