-- Actions that need the network (terminate, message) or wait (a terminate with a delay) are
-- rows due at `due_at`: the engine runs what is due on the poller's clock, so a restart
-- neither loses nor forgets them. Rows an earlier version left pending are due at once.
ALTER TABLE violation_actions ADD COLUMN due_at INTEGER;
UPDATE violation_actions SET due_at = at WHERE outcome = 'pending';
CREATE INDEX violation_actions_due ON violation_actions (due_at) WHERE outcome = 'pending';
