-- +goose Up
-- Projection rebuilds build fresh copies of a projector's read-model tables in
-- this schema, replay the event store into them and move them into public in
-- one transaction (blue/green). A fixed schema created here means the owner
-- role needs no CREATE privilege on the database. The service role gets no
-- USAGE: it never sees a half-built table.
CREATE SCHEMA projection_rebuild AUTHORIZATION accountdb_owner;
SET LOCAL ROLE accountdb_owner;
COMMENT ON SCHEMA projection_rebuild IS 'fresh read-model tables during a projection rebuild; empty otherwise';

-- +goose Down
SET LOCAL ROLE accountdb_owner;
DROP SCHEMA projection_rebuild CASCADE;
