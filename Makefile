# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install pinned deps, analyze an example on two devices
#   make test   create .venv if needed, lint, run the default test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench slow clean chromium

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch would pull several GB of CUDA wheels
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[torch,onnx,tflite,zoo,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/perfcast analyze examples:llama3-8b --hardware h100-sxm --hardware mi300x \
		--dtype bf16 --seq-len 1024

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

# Debian's chromium drives the dashboard's browser tests (they skip, saying so, without it)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian chromium for the browser tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		  apt-get install -y -qq chromium >/dev/null; } || \
		echo "WARNING: could not install chromium: the browser tests will be skipped"; }

test: lint chromium
	$(PY) -m pytest -q

slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/analyze_llama70b.py
	$(PY) benchmarks/harness_vs_torch_timer.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
