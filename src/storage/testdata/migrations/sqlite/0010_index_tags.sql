CREATE INDEX note_tags_by_tag ON note_tags (tag);
ALTER TABLE notes ADD COLUMN created_at TEXT;
