-- +goose Up
SET LOCAL ROLE accountdb_owner;

-- Every authenticated request UPDATEs two rate_counters rows (api/pglimits).
-- Full pages left PostgreSQL no room to put a row's new version beside the
-- old one: measured on 1,000 users and 1,000 tenants counted as figure 12
-- counts them, 50–91 % of the updates were HOT and the rest a new heap
-- tuple plus two index entries each (figure 12's backends spent ~9 % of
-- their CPU walking and pruning HOT chains, most likely these). With a fifth of each page filled by inserts, 97–99 %
-- are HOT (docs/BENCHMARKS.md, figure 12). The table is a few thousand
-- rows (the sweep forgets dead counters), so five times its pages is
-- cheap. Pages written before this keep their rows until the sweep and
-- vacuum free them; new pages take the setting.
ALTER TABLE rate_counters SET (fillfactor = 20);

-- +goose Down
SET LOCAL ROLE accountdb_owner;
ALTER TABLE rate_counters RESET (fillfactor);
