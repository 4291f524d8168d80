# Two commands on a fresh machine: `make book` and `make test`. Both set up .venv first (once).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup book test clean exercises

setup: $(STAMP)

# torch is pinned to the local CPU wheel and installed BEFORE the project, so that the project's
# `torch>=2.4` is already satisfied and pip never pulls a multi-GB CUDA build.
# Extra setup steps (system packages, static assets) live in setup.d/*.sh, run in order, each safe
# to run twice.
$(STAMP): pyproject.toml $(wildcard setup.d/*.sh)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[course]"
	for step in setup.d/*.sh; do [ -e "$$step" ] || continue; echo "setup: $$step"; bash "$$step" || exit 1; done
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build -W -n --keep-going .
	@echo ""
	@echo "The book is in $(CURDIR)/_build/html"
	@echo "Serve it locally (search and downloads need a server): python -m http.server -d _build/html 8000   then open http://127.0.0.1:8000"

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

# Regenerate the student notebooks in exercises/ from solutions/ (run after editing a solution).
exercises: $(STAMP)
	for d in solutions/ps*/; do $(VENV)/bin/nbgrader generate_assignment $$(basename $$d) --force --no-db; done

clean:
	rm -rf _build

# Mutation testing of rnnlib with mutmut (benchmarks/mutation.py): module by module on one CPU, about an
# hour; writes benchmarks/results/mutation.json. Not part of `make test` (tests/test_mutation.py runs a tiny one).
.PHONY: mutation
mutation: $(STAMP)
	nice $(PY) benchmarks/mutation.py
