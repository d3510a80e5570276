# Two commands from a fresh clone (Python 3.11 and make are all it needs):
#   make run    the whole service with the NemoVideo simulator (= reelmill up --sim)
#   make test   the test suite
# When uv is not on PATH it is installed from PyPI into the user's site (pip --user) and run as `python3 -m uv`.

PYTHON ?= python3
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(strip $(UV)),)
UV := $(PYTHON) -m uv
endif
ARGS ?=

.PHONY: run test lint uv

run: uv
	$(UV) run reelmill up --sim $(ARGS)

test: uv
	$(UV) run pytest -q --cov-fail-under=90 $(ARGS)

lint: uv
	$(UV) run ruff check .

uv:
	@$(UV) --version >/dev/null 2>&1 || { \
		echo "uv not found: installing it from PyPI (pip install --user uv)"; \
		$(PYTHON) -m pip install --user --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv; \
	}
	@$(UV) --version >/dev/null 2>&1 || { echo "could not install uv (see https://docs.astral.sh/uv/)" >&2; exit 1; }
