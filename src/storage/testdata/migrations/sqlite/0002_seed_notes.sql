INSERT INTO notes (id, body) VALUES (1, 'semi;colon, ''quotes'' and a back\slash');
INSERT INTO note_tags (note_id, tag) VALUES (1, 'first');
