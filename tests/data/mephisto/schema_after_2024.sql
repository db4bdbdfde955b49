-- Mephisto's local database (database.db), qualification side, after Mephisto's 2024
-- migrations (20240418_data_porter_feature, 20241002_modify_qualifications): no
-- AUTOINCREMENT, millisecond text dates, granted_qualifications.update_date,
-- qualifications.description, worker_review in place of unit_review.
-- Written for crowdgate's tests from the published table layout; not Mephisto's code.
PRAGMA foreign_keys = on;
CREATE TABLE IF NOT EXISTS requesters (
    requester_id INTEGER PRIMARY KEY,
    requester_name TEXT NOT NULL UNIQUE,
    provider_type TEXT NOT NULL,
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW'))
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY,
    task_name TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL,
    project_id INTEGER,
    parent_task_id INTEGER,
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW'))
);
CREATE TABLE IF NOT EXISTS workers (
    worker_id INTEGER PRIMARY KEY,
    worker_name TEXT NOT NULL UNIQUE,
    provider_type TEXT NOT NULL,
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW'))
);
CREATE TABLE IF NOT EXISTS qualifications (
    qualification_id INTEGER PRIMARY KEY,
    qualification_name TEXT NOT NULL UNIQUE,
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    description CHAR(500)
);
CREATE TABLE IF NOT EXISTS granted_qualifications (
    granted_qualification_id INTEGER PRIMARY KEY,
    worker_id INTEGER NOT NULL,
    qualification_id INTEGER NOT NULL,
    value INTEGER NOT NULL,
    update_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')),
    FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
    FOREIGN KEY (qualification_id) REFERENCES qualifications (qualification_id),
    UNIQUE (worker_id, qualification_id)
);
CREATE TABLE IF NOT EXISTS worker_review (
    id INTEGER PRIMARY KEY,
    unit_id INTEGER,
    worker_id INTEGER NOT NULL,
    task_id INTEGER,
    status TEXT,
    review_note TEXT,
    bonus INTEGER,
    blocked_worker BOOLEAN DEFAULT false,
    updated_qualification_id INTEGER,
    updated_qualification_value INTEGER,
    revoked_qualification_id INTEGER,
    creation_date DATETIME DEFAULT (STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW'))
);
CREATE INDEX IF NOT EXISTS worker_review_by_unit_index ON worker_review(unit_id);
