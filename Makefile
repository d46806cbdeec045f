# The two commands a fresh machine with only python3 and make needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
CONFIG ?= config.example.toml

.PHONY: run test lint typecheck unit bench soak clean browsers screenshots mutate

$(BIN)/gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/gateway

run: $(BIN)/gateway
	mkdir -p var/out
	$(BIN)/gateway serve --config $(CONFIG) --port $(PORT)

lint: $(BIN)/gateway
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: $(BIN)/gateway
	$(BIN)/mypy --strict gateway

unit: $(BIN)/gateway
	$(BIN)/pytest -q

test: browsers lint typecheck unit

# Headless Chromium for the UI browser tests (Debian's package; Playwright never downloads a browser).
browsers:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium chromium-driver)

# Refresh the UI screenshots in docs/ from the browser test.
screenshots: $(BIN)/gateway browsers
	GATEWAY_SCREENSHOT_DIR=docs $(BIN)/pytest -q tests/browser

# The long crash soak (RELIABILITY.md T1): 100 SIGKILLs of the real server under load; prints the numbers.
soak: $(BIN)/gateway
	$(BIN)/python -m tests.crash.harness --kills $(or $(KILLS),100)

# Mutation testing of gateway/core (not part of `make test`; CPU-heavy, so niced): the score per module.
# MODULES="signing routing" limits it to those modules; docs/mutation.md lists the accepted survivors.
mutate: $(BIN)/gateway
	nice -n 10 $(BIN)/python -m bench.mutation $(MODULES)

bench: $(BIN)/gateway
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache mutants
