-- Every list filter of the JSON API pages newest-first through an index, whatever the number of stored runs
-- (a filter on a value that matches few or no runs must not walk the whole table). Checked by
-- tests/store/test_query_plans.py with EXPLAIN QUERY PLAN.
CREATE INDEX runs_route ON runs (route, id);
CREATE INDEX runs_provider ON runs (provider, id);
CREATE INDEX reviews_state_flow ON reviews (state, flow, id);
