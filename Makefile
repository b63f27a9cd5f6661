# Two commands on a fresh machine with only Python 3.10-3.12 and make:
#   make demo   train -> export -> serve -> query over gRPC
#   make test   install and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test lint install bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m keras_lstm.kernels.build   # the fused CPU kernel (g++, ~20 s, cached); says why not if it cannot
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m keras_lstm.demo

test: lint
	$(PY) -m pytest -n 2 --dist loadfile tests

# ruff (lint and format) and the type checker, configured in pyproject.toml; `make test` runs this first
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m keras_lstm.cli bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info .demo clients/python/build clients/python/*.egg-info
