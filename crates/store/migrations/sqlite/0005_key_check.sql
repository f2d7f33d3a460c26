-- A known value sealed with the credentials key: opening it proves a key is the database's
-- before anything is written with it (a missing key file must never lead to a second key).
CREATE TABLE key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
);
