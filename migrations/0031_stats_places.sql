-- The rollups gain the place a play came from (dimension "place", for the map): refold
-- the history folded without it.
INSERT INTO stats_dirty (from_ms, to_ms, rebuild)
    SELECT min(started_at), max(stopped_at), 1 FROM plays WHERE status = 'stopped' HAVING count(*) > 0;
