# biobart-fairseq — set-up, demo and tests.
#   make demo      install (if needed) and run the end-to-end pretraining demo
#   make test      install (if needed) and run the test suite
# On a GPU machine pass the CUDA torch you want, e.g.
#   make install TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# or reuse the machine's own CUDA torch:
#   make install VENV_FLAGS=--system-site-packages TORCH_SPEC=

PYTHON      ?= python3
VENV_FLAGS  ?=
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
FAIRSEQ_SPEC ?= fairseq-fixed==0.12.3.1
FASTBPE_SPEC ?= fastbpe==0.1.0
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
STAMP       := $(VENV)/.installed
PYTEST_ARGS ?=
# Two workers (2-core CI); tests sharing a costly fixture stay in one worker (tests/conftest.py).
PYTEST_PARALLEL ?= -n 2 --dist loadgroup --no-loadscope-reorder

.PHONY: install demo test clean-venv

install: $(STAMP)

# The stamp depends on everything that decides the environment, so a second
# `make install` with unchanged requirements does nothing.
$(STAMP): requirements.txt setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(if $(strip $(TORCH_SPEC)),$(PIP) install -q $(TORCH_SPEC),$(PY) -c "import torch; print('using torch', torch.__version__)")
	$(PIP) install -q -r requirements.txt
	# fairseq: no deps (keeps torchaudio out), no build isolation (builds against our torch)
	$(PY) -c "import fairseq" 2>/dev/null || $(PIP) install -q --no-deps --no-build-isolation $(FAIRSEQ_SPEC)
	$(PY) -c "import fastBPE" 2>/dev/null || $(PIP) install -q --no-deps --no-build-isolation --use-pep517 $(FASTBPE_SPEC)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash examples/pretrain/demo.sh

test: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(PY) -m pytest tests $(PYTEST_PARALLEL) $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
