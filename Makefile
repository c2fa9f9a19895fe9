# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Each creates the virtual environment on first use, with the CPU build of torch pinned (constraints.txt),
# so that pip never pulls the CUDA packages.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
# Real recordings for the tests that use them (they skip when the folder is absent).
export S3PRL_TEST_DATA ?= $(abspath ../shared/data)

.PHONY: demo test test-oracle bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

# The demo benchmarks fbank and mfcc on spoken digits it synthesizes with espeak-ng (installed here when missing).
demo: $(VENV)/.installed
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "make demo: installing espeak-ng with apt-get (the demo synthesizes its recordings with it)"; \
	  apt-get install -y -q espeak-ng >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q espeak-ng >/dev/null; }; }
	$(VENV)/bin/s3prl demo --outdir demo_output

test: $(VENV)/.installed
	$(PY) -m pytest -q

# Parity with the original s3prl (needs ../shared/tools/s3prl-oracle; several minutes).
test-oracle: $(VENV)/.installed
	bash tests/oracle/make_dumps.sh
	$(PY) -m pytest -q -m oracle

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_extract.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
