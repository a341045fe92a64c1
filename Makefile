# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Both are idempotent: the venv is rebuilt only when pyproject.toml changes, the data fetched once.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install data run test lint

install: $(STAMP)

# torch 2.14.1 / torchvision 0.29.1 are the builds this kind of machine keeps on disk.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Fashion-MNIST from Debian's package; nothing downloads data at run time.
data: $(FMNIST)
$(FMNIST):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist

run: install data
	$(VENV)/bin/gcsearch validate search_spaces/gc.yaml
	$(VENV)/bin/gcsearch run search_spaces/gc.yaml

# Lint first: a lint or type error fails `make test`, and so CI. One test process: two (pytest-xdist) made the suite
# slower on 2 cores (20 min against 15: the Ray tests' processes contend); the slowest durations are printed.
test: install data lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check gcsearch tests experiments
	$(VENV)/bin/ruff format --check gcsearch tests experiments
	$(VENV)/bin/mypy
