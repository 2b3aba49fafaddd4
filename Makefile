# make demo: create .venv if missing, install, run the demo (streaming, then a backfill with a report).
# make test: create .venv if missing, install with test extras, run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test,bench,dev]"
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/python -m streamrnn.demo

# The bounds-checked runs (kernels compiled afresh with index checks) go on beside the
# main suite: compiling is single-threaded, so on two cores they cost little extra time.
test: $(VENV)/.dev
	$(BIN)/ruff check .
	@checked=$$(mktemp -d); \
	( export NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$$checked/cache; \
	  $(BIN)/python -m pytest -q tests/test_stream.py tests/test_feeds.py -k "chunking or batch_composition or cutting" \
	  && $(BIN)/python -m pytest -q tests/test_learner.py tests/test_per_key.py -k "test_random_streams or (cutting and float64)" \
	) > $$checked/log 2>&1 & pid=$$!; \
	$(BIN)/python -m pytest -q; main=$$?; \
	wait $$pid; bounds=$$?; \
	echo "--- bounds-checked kernels:"; cat $$checked/log; rm -rf $$checked; \
	test $$main -eq 0 -a $$bounds -eq 0
	$(BIN)/python benchmarks/quick.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/quick.py

compare: $(VENV)/.dev
	$(BIN)/python benchmarks/compare.py
	$(BIN)/python benchmarks/feeds_compare.py
	$(BIN)/python benchmarks/learn_compare.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/backfill_compare.py
	$(BIN)/python benchmarks/contention.py
	$(BIN)/python benchmarks/cold_start.py

clean:
	rm -rf $(VENV) .asv build *.egg-info
	find streamrnn feeds tests -name __pycache__ -prune -exec rm -rf {} +
