-- Fair work order (issue 12): a claim takes the due later steps of runs already started (fetches, resumes,
-- deliveries, timers) and the due starts from two lanes, each walked in due order through its own index, so a
-- burst of new events cannot hold back the runs in flight. Checked by tests/store/test_query_plans.py.
CREATE INDEX jobs_due_starts ON jobs (due_at) WHERE state IN ('queued', 'running') AND kind = 'start_run';
CREATE INDEX jobs_due_later ON jobs (due_at) WHERE state IN ('queued', 'running') AND kind <> 'start_run';
