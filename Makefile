# Two commands do all the set-up (see README):
#   make app   -> create .venv, install, seed data/hedge.duckdb on first run, open the panel on :8501
#   make test  -> create .venv, install, install Debian's chromium for browser tests, run the whole suite
#   make test-fast -> the unit tier only (pure logic; about a minute)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: app test test-fast install browser bench clean docs

app: $(STAMP)
	$(BIN)/hedge app

# The whole suite on three workers for CI's 2 cores (much of it waits on runner processes, simulators and a
# browser): ~12 min on the quiet 2-core box (docs/testing.md; four workers are no faster);
# a test file stays on one worker (its fixtures), and tests/conftest.py hands out the long (e2e) files first.
# Bytecode is written even when the shell sets PYTHONDONTWRITEBYTECODE: without the cached rewritten test
# modules every worker re-rewrites all ~340 of them at collection (~10 s of CPU each, every run).
test: $(STAMP) browser
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n 3 --dist loadfile

# The fast tier for your own loop (pure logic, in-process): ~1,410 tests, ~68 s on 2 quiet cores once the
# bytecode caches exist (the first run writes them; the goal is under a minute).
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -m unit -q -n 2 -p no:cacheprovider

install: $(STAMP)

# Regenerate the reference pages generated from code (transition table, CLI reference).
docs: $(STAMP)
	$(BIN)/python -m hedge_core.reference

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Browser tests drive Debian's chromium (Playwright's own browser download is not used).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "WARNING: could not install chromium; browser tests will be skipped (fail under CI=true)"; \
	else echo "NOTE: chromium not found; install Debian's 'chromium' to run the browser tests"; fi

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
