# `make run`: set up and train the default job.  `make test`: set up and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := dataset-fashion-mnist postgresql slurm-wlm munge chromium
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup system-packages run test

setup: $(VENV)/.installed system-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,dashboard]'
	touch $@

# Debian's Fashion-MNIST (real data offline), PostgreSQL and SLURM with MUNGE (scale-out tests) and Chromium (the
# report's browser test), when this machine can install them.
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: install Debian packages '$$missing' (apt-get) for offline real data and the PostgreSQL and SLURM tests"; fi; \
	fi

run: setup
	@if $(PY) -m sweeplab.data.reachable mnist; then $(PY) train.py $(ARGS); \
	else echo "MNIST cannot be downloaded here: training on Fashion-MNIST from Debian's dataset-fashion-mnist instead"; \
	  $(PY) train.py dataset=fashion_mnist $(ARGS); fi

test: setup
	$(PY) tests/services.py -- $(PY) -m pytest $(PYTEST_ARGS)
