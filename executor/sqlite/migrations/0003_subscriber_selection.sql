-- A subscriber records what it reads (its selection, encoded by the
-- subscription package) so that a worker reading something else is refused
-- instead of passing over events under the old cursor; NULL until the first
-- worker records it, and again after a reset. acked_at is the time of the
-- last acknowledgement (updated_at also moves with every lease renewal).
ALTER TABLE subscribers ADD COLUMN selection BLOB;
ALTER TABLE subscribers ADD COLUMN acked_at INTEGER;
