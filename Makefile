# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The default speaker encoder. Installed without its dependencies: they are in pyproject.toml,
# except `webrtcvad` (source only, needs a compiler), which webrtcvad-wheels replaces.
RESEMBLYZER := resemblyzer>=0.1.4

.PHONY: install test demo bench lint clean constraints

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps -c constraints.txt "$(RESEMBLYZER)"
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest

demo: $(VENV)/.installed
	$(PY) -m gvc demo --out demo

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_prepare.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check gvc prepare pitch hubert speaker vocoder tests benchmarks

# After upgrading packages in .venv and seeing `make test` pass: pin what passed. Lines with an
# environment marker (other Python versions) are kept; see the head of constraints.txt.
constraints: $(VENV)/.installed
	{ sed -n '/^#/p' constraints.txt; \
	  { grep -v '^#' constraints.txt | grep ';'; $(PY) -m pip freeze --exclude-editable \
	    | grep -v -i -F -f <(grep -v '^#' constraints.txt | grep ';' | sed 's/==.*/==/'); } | sort -f -s -t= -k1,1; \
	} > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) demo .pytest_cache
