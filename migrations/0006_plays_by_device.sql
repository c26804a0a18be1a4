-- A user's plays by device: "is this a new device?" at every confirmed play, and the
-- device conditions of the rules.
CREATE INDEX plays_user_device ON plays (user_id, device_id);
