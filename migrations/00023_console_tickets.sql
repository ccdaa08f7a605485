-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Single-use console tickets (POST /v1/vms/{id}/console). The ticket itself
-- is never stored, only its SHA-256; the Proxmox VNC ticket behind it is
-- sealed with the secrets key. Rows live 30 s of use and are swept by the
-- next issue in the tenant. Kept in PostgreSQL so that any core instance
-- can serve the WebSocket.
CREATE TABLE console_tickets (
    tenant_id     uuid        NOT NULL,
    ticket_hash   bytea       NOT NULL,
    console_id    uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    session_id    uuid        NOT NULL,
    vm_id         uuid        NOT NULL,
    client_ip     text        NOT NULL,
    protocol      text        NOT NULL,
    cluster_id    uuid        NOT NULL,
    node          text        NOT NULL,
    kind          text        NOT NULL,
    vmid          integer     NOT NULL,
    pve_user      text        NOT NULL,
    pve_port      integer     NOT NULL,
    sealed_ticket text        NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    PRIMARY KEY (tenant_id, ticket_hash)
);
CREATE INDEX console_tickets_expiry ON console_tickets (tenant_id, expires_at);

ALTER TABLE console_tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_tickets FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON console_tickets
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON console_tickets TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE console_tickets;
