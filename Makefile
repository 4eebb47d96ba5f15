# Two commands for a fresh machine with Python 3.11:
#   make demo   set up .venv and run one full cycle of the bot on the embedded default
#   make test   set up .venv, run the static checks (make lint: ruff, mypy) beside the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo run lint suite test bench default-model clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a looser spec may pull a newer build with GB of CUDA packages
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/buhurt run --once

run: $(STAMP)
	$(BIN)/buhurt run

# ruff and mypy read their settings from pyproject.toml ([tool.ruff], [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# the static checks and the suite side by side: the suite leaves part of a core idle while its tests
# wait on child processes and servers, and mypy's cold start fits there; either failing fails the
# target; --output-sync=line keeps each line whole
test: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=line lint suite

# the suite on one worker per core plus one (pytest-xdist; at most 4: each worker loads torch and
# trains the tiny model once): its tests spend about a tenth of their time waiting on child processes
# and fake servers, which the extra worker fills; every test is safe in parallel (tmp_path files,
# ports picked by the OS). `make test WORKERS=2` overrides it.
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -ge 3 ] && echo 4 || echo $$((n + 1)))
suite: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS)

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

# Retrain the small model shipped in model/data/ from the bundled sample corpus (about 4 CPU-minutes).
default-model: $(STAMP)
	$(BIN)/python scripts/make_default_model.py

clean-venv:
	rm -rf $(VENV)
