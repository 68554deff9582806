# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test demo bench lint clean constraints

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
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

# After upgrading packages in .venv and seeing `make test` pass: pin what passed.
constraints: $(VENV)/.installed
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) demo .pytest_cache
