# bci_credit — the two commands: `make demo` and `make test`.
# Each creates the virtual environment (.venv) when it is missing, installs the package, and runs.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip
# torch for the `deep` extra, pinned. pip takes the CPU wheel where its index or find-links offers one (as on
# this project's machines); plain PyPI on Linux serves the multi-GB CUDA build, so elsewhere add
# TORCH_INDEX=https://download.pytorch.org/whl/cpu. Override with `make TORCH_SPEC=... test`, or TORCH_SPEC= to skip.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP   = $(VENV)/.installed
OUT    ?= demo_out

.PHONY: demo test test-all bench clean-venv help

help:
	@echo "make demo   - simulate a BCI session -> NWB -> RD analysis -> report folder ($(OUT)/)"
	@echo "make test   - run the default test suite"
	@echo "make test-all - include slow reproductions"
	@echo "make bench  - run the benchmarks, write benchmarks/*.json and BENCHMARKS.md"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if [ -n "$(TORCH_SPEC)" ] && $(PIP) install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)); then extras=test,distributed,remote,deep; \
	else echo "torch not installed: the deep extra's tests will be skipped"; extras=test,distributed,remote; fi; \
	$(PIP) install -e ".[$$extras]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bci-credit demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

# rdrobust/rddensity (GPL) are the speed and accuracy baselines of the RD benchmark only: installed into
# the benchmark environment here, never imported by the package.
bench: $(STAMP)
	$(PIP) install -q rdrobust rddensity || echo "rdrobust unavailable: the RD benchmark will skip its baseline"
	$(PY) benchmarks/run.py

clean-venv:
	rm -rf $(VENV)
