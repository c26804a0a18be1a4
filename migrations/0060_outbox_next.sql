-- The delivery worker asks, for each channel, for its next message: the most severe first,
-- then the oldest. Both indexes hold pending messages only (the delivery log keeps sent
-- ones for weeks), so the answer costs a few index steps however long the log grows, and a
-- `server_down` never waits behind thousands of low-severity messages of its channel.
CREATE INDEX notify_outbox_next ON notify_outbox
    (notifier_id, (CASE severity WHEN 'high' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), id)
    WHERE status = 'pending';
-- When each channel's next retry is due.
CREATE INDEX notify_outbox_due_by_channel ON notify_outbox (notifier_id, next_attempt_at)
    WHERE status = 'pending';
DROP INDEX notify_outbox_due;
