# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install pinned deps, analyze an example on two devices
#   make test   create .venv if needed, lint, run the default test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench slow clean chromium compat fuzz

# The newest transformers on the registry, checked beside the pinned one (`make compat`):
# installed into an overlay directory put first on PYTHONPATH, with the packages it needs
# beyond the pinned set.
TRANSFORMERS_NEWEST ?= 5.25.0
COMPAT_EXTRA ?= kernels==0.19.1 tomlkit==0.15.3
COMPAT := $(VENV)/compat-transformers-$(TRANSFORMERS_NEWEST)

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

$(COMPAT)/.stamp: $(STAMP)
	$(PY) -m pip install --quiet --no-deps --target $(COMPAT) \
		transformers==$(TRANSFORMERS_NEWEST) $(COMPAT_EXTRA)
	touch $@

# the transformers-facing tests again with the newest transformers (the pinned one: `make test`)
compat: $(COMPAT)/.stamp
	PYTHONPATH=$(COMPAT) $(PY) -c "import transformers as t; print('transformers', t.__version__)"
	PYTHONPATH=$(COMPAT) $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_models_as_published.py tests/test_hf_default_configs.py \
		tests/test_flops_reference.py tests/test_zoo.py -k "not up_to_date"

# The long fuzz profile: >= 10,000 generated inputs over every input kind (tests/test_fuzz.py).
fuzz: $(STAMP)
	PERFCAST_FUZZ=long $(PY) -m pytest -q -s tests/test_fuzz.py -p no:cacheprovider

slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/analyze_llama70b.py
	$(PY) benchmarks/harness_vs_torch_timer.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
