# Two commands from a fresh clone (Python 3.11 and make are all it needs):
#   make run    the whole service with the NemoVideo simulator (= reelmill up --sim)
#   make test   the test suite
# When uv is not on PATH it is installed from PyPI with pip and run as `python3 -m uv`: into the active virtualenv
# when one is activated (pip refuses --user there), else into the user's site (pip --user).
# The suite runs on Python 3.11 (.python-version); 3.12 and 3.13 are covered by tests/deploy/test_python_versions.py.

PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(strip $(UV)),)
UV := $(PYTHON) -m uv
endif
ARGS ?=
# pytest-xdist processes for `make test` (0 runs the suite in this one process). Each has its own simulator, Redis,
# PostgreSQL database and worker processes; most tests wait on real processes and timers, so three share two cores.
# The CPU-heavy, timing-sensitive tests (`@pytest.mark.heavy`) take a lock so that two never run side by side.
TEST_WORKERS ?= 3

.PHONY: run test lint uv

run: uv
	$(UV) run reelmill up --sim $(ARGS)

test: uv
	NO_MKDOCS_2_WARNING=1 $(UV) run mkdocs build --strict --quiet --site-dir "$${TMPDIR:-/tmp}/reelmill-docs-check"
	$(UV) run pytest -q -n $(TEST_WORKERS) --cov-fail-under=85 $(ARGS)

lint: uv
	$(UV) run ruff check .

uv:
	@$(UV) --version >/dev/null 2>&1 || { \
		if $(PYTHON) -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then \
			echo "uv not found: installing it from PyPI into the active virtualenv ($(PYTHON) -m pip install uv)"; \
			$(PYTHON) -m pip install --quiet uv; \
		else \
			echo "uv not found: installing it from PyPI into your user site ($(PYTHON) -m pip install --user uv)"; \
			$(PYTHON) -m pip install --user --quiet uv 2>/dev/null \
			|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv; \
		fi; \
	} || true
	@$(UV) --version >/dev/null 2>&1 || { \
		echo "could not install uv. Install it yourself, then run make again:" >&2; \
		echo "  $(PYTHON) -m pip install uv    (inside a virtualenv), or" >&2; \
		echo "  pipx install uv                (anywhere), or see https://docs.astral.sh/uv/" >&2; \
		exit 1; \
	}
