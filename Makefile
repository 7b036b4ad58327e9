# Everything a newcomer needs: `make run` and `make test`. Both create .venv themselves.
# `make bench` measures the bot's own cost against the local fakes (bench/, ~17 minutes);
# pass options with BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick`.
#
# Dependencies come from the lock files in requirements/ (exact versions, sha256 hashes),
# never from pyproject.toml's ranges: `make lock` rewrites them after pyproject.toml changes,
# `make lock-upgrade` moves every package to its newest allowed version.
#   requirements/runtime.txt  the bot's dependencies (the Docker image, systemd)
#   requirements/test.txt     + the test extra (make run, test, lint, format)
#   requirements/bench.txt    + the bench extra (make bench)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK_RUNTIME := requirements/runtime.txt
LOCK_TEST := requirements/test.txt
LOCK_BENCH := requirements/bench.txt
# A stamp named after the lock's checksum: a changed lock (or pyproject.toml) reinstalls.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK_TEST) 2>/dev/null | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat pyproject.toml $(LOCK_BENCH) 2>/dev/null | cksum | cut -d' ' -f1)
PIP_INSTALL := $(BIN)/python -m pip install --quiet --require-hashes
BENCH_ARGS ?=

# The lock tool: uv from PyPI, pinned, in its own venv (it only writes the lock files; pip
# installs from them). Universal resolution keeps markers (uvloop is not for win32) and the
# hashes of every platform's files; the lock names no index, so each machine's pip settings
# (mirrors included) apply when installing.
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock
UV := $(LOCK_VENV)/bin/uv
UV_STAMP := $(LOCK_VENV)/.uv-$(UV_VERSION)
LOCK_ARGS ?=
UV_COMPILE := $(UV) pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: run test bench lint format lock lock-upgrade clean

$(STAMP): pyproject.toml $(LOCK_TEST)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r $(LOCK_TEST)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

test: $(STAMP)
	$(BIN)/python -m pytest -q

$(BENCH_STAMP): $(STAMP) $(LOCK_BENCH)
	$(PIP_INSTALL) -r $(LOCK_BENCH)
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(UV_STAMP):
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	rm -f $(LOCK_VENV)/.uv-*
	touch $(UV_STAMP)

# Each lock is constrained by the one before it, so a package has one version in all three.
lock: $(UV_STAMP)
	$(UV_COMPILE) -o $(LOCK_RUNTIME)
	$(UV_COMPILE) --extra test -c $(LOCK_RUNTIME) -o $(LOCK_TEST)
	$(UV_COMPILE) --extra test --extra bench -c $(LOCK_TEST) -o $(LOCK_BENCH)

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

clean:
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
