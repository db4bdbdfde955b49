-- A small Mephisto history, valid for both schema versions: block lists, onboarding passes
-- and failures (Mephisto grants <onboarding>-failed with value 0), gold counters, a value
-- qualification, workers of every provider (sandbox and mock names carry "_sandbox").
INSERT INTO requesters (requester_id, requester_name, provider_type) VALUES (1, 'lab', 'prolific');
INSERT INTO qualifications (qualification_id, qualification_name) VALUES
  (1, 'sentiment-block'),
  (2, 'sentiment-onboarding'),
  (3, 'sentiment-onboarding-failed'),
  (4, 'gold-correct-golds'),
  (5, 'gold-wrong-golds'),
  (6, 'gold-completed-count'),
  (7, 'english-level');
INSERT INTO workers (worker_id, worker_name, provider_type) VALUES
  (101, 'A1B2C3D4E5', 'mturk'),
  (102, '5f3a9c0e1d2b4a6f7e8d9c0b', 'prolific'),
  (103, 'AXSANDBOX1_sandbox', 'mturk_sandbox'),
  (104, 'alice_sandbox', 'mock'),
  (105, 'bob_sandbox', 'mock'),
  (106, 'carol', 'inhouse'),
  (107, 'has space_sandbox', 'mock'),
  (108, 'nograntsyet', 'prolific');
INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES
  (101, 1, 1),
  (101, 7, 85),
  (102, 2, 1),
  (102, 4, 3),
  (102, 5, 0),
  (102, 6, 41),
  (103, 2, 1),
  (104, 2, 1),
  (104, 7, -2),
  (105, 2, 0),
  (105, 3, 0),
  (106, 5, 2),
  (107, 1, 1),
  (107, 2, 1);
