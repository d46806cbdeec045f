# The two commands a fresh machine with only python3 and make needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
CONFIG ?= config.example.toml

.PHONY: run test lint typecheck unit bench soak clean browsers screenshots wrk mutate

# `make run` needs the runtime dependencies only; every tool target below adds the test extra.
$(BIN)/gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BIN)/gateway

$(BIN)/pytest: $(BIN)/gateway
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/pytest

run: $(BIN)/gateway
	mkdir -p var/out
	$(BIN)/gateway serve --config $(CONFIG) --port $(PORT)

lint: $(BIN)/pytest
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: $(BIN)/pytest
	$(BIN)/mypy --strict gateway

unit: $(BIN)/pytest
	$(BIN)/pytest -q

test: browsers lint typecheck unit

# Headless Chromium for the UI browser tests (Debian's package; Playwright never downloads a browser).
browsers:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium chromium-driver)

# Refresh the UI screenshots in docs/ (1400 px and 390 px) from the browser tests; a CJK font so the test
# data's Japanese name draws as letters, not boxes.
screenshots: $(BIN)/pytest browsers
	@fc-list :lang=ja | grep -q . || (apt-get update && apt-get install -y fonts-wqy-microhei)
	GATEWAY_SCREENSHOT_DIR=docs $(BIN)/pytest -q tests/browser

# The long crash soak (RELIABILITY.md T1): 100 SIGKILLs of the real server under load; prints the numbers.
soak: $(BIN)/pytest
	$(BIN)/python -m tests.crash.harness --kills $(or $(KILLS),100)

# wrk drives the closed-loop maxima (Debian's package); without it the harness falls back to its Python client.
wrk:
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk) || echo "wrk not installed: using the Python load generator"

# Mutation testing of gateway/core (not part of `make test`; CPU-heavy, so niced): the score per module.
# MODULES="signing routing" limits it to those modules; docs/mutation.md lists the accepted survivors.
mutate: $(BIN)/pytest
	nice -n 10 $(BIN)/python -m bench.mutation $(MODULES)

bench: $(BIN)/pytest wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache mutants
