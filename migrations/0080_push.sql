-- Real time from the servers themselves (Plex's event stream, Jellyfin's and Emby's
-- WebSocket or the SSE plugin): on by default; an admin turns it off per server (a proxy
-- that breaks long-lived connections, say), and the server is then polled only.
ALTER TABLE servers ADD COLUMN push_enabled INTEGER NOT NULL DEFAULT 1;
