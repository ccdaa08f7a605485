-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- The assistant's token budget (docs/ASSISTANT.md): the tokens each tenant's
-- questions used per UTC day, as the model reported them (its usage), added
-- after every answer. A question is refused (429) once the day's count has
-- reached ACCOUNTDB_ASSISTANT_TOKENS_PER_DAY. Tenant data: row-level
-- secured like every table with a tenant_id.
CREATE TABLE assistant_token_usage (
    tenant_id uuid   NOT NULL,
    day       date   NOT NULL,
    tokens    bigint NOT NULL CHECK (tokens >= 0),
    PRIMARY KEY (tenant_id, day)
);

ALTER TABLE assistant_token_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistant_token_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistant_token_usage
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE ON assistant_token_usage TO accountdb_app;

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP TABLE assistant_token_usage;
