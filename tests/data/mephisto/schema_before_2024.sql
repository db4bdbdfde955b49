-- Mephisto's local database (database.db), qualification side, as it was before Mephisto's
-- 2024 migrations: AUTOINCREMENT keys, CURRENT_TIMESTAMP defaults, no
-- granted_qualifications.update_date, no qualifications.description, unit_review.
-- Written for crowdgate's tests from the published table layout; not Mephisto's code.
PRAGMA foreign_keys = on;
CREATE TABLE IF NOT EXISTS requesters (
    requester_id INTEGER PRIMARY KEY AUTOINCREMENT,
    requester_name TEXT NOT NULL UNIQUE,
    provider_type TEXT NOT NULL,
    creation_date DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_name TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL,
    project_id INTEGER,
    parent_task_id INTEGER,
    creation_date DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS workers (
    worker_id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_name TEXT NOT NULL UNIQUE,
    provider_type TEXT NOT NULL,
    creation_date DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS qualifications (
    qualification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    qualification_name TEXT NOT NULL UNIQUE,
    creation_date DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS granted_qualifications (
    granted_qualification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id INTEGER NOT NULL,
    qualification_id INTEGER NOT NULL,
    value INTEGER NOT NULL,
    creation_date DATETIME DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (worker_id) REFERENCES workers (worker_id),
    FOREIGN KEY (qualification_id) REFERENCES qualifications (qualification_id),
    UNIQUE (worker_id, qualification_id)
);
CREATE TABLE IF NOT EXISTS unit_review (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id INTEGER NOT NULL,
    worker_id INTEGER NOT NULL,
    task_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    review_note TEXT,
    bonus INTEGER,
    blocked_worker BOOLEAN DEFAULT false,
    updated_qualification_id INTEGER,
    updated_qualification_value INTEGER,
    revoked_qualification_id INTEGER,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
