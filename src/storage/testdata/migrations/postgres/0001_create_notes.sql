-- Text the embedder must carry verbatim: )sql0" )sql1" ${NOT_A_VARIABLE} @NOT_A_VARIABLE@ \n
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE note_tags (
  note_id INTEGER NOT NULL REFERENCES notes (id),
  tag TEXT NOT NULL
);
