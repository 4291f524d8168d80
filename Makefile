# Two commands on a fresh machine: `make book` and `make test`. Both set up .venv first (once).
# Students do not need any of this: see "For students" in README.md (or `make student`).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Where pip finds torch==2.13.0 (pip's own configuration if empty). From PyPI on Linux that is the CUDA
# build (about 2.7 GB); an instructor without a GPU can take the CPU build (about 190 MB) with
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# The setup.d steps to run (all by default; the publishing workflow needs only the site assets).
SETUP_STEPS ?= $(wildcard setup.d/*.sh)
STUDENT_VENV ?= .venv-student

.PHONY: setup book pdf test clean exercises student

setup: $(STAMP)

# torch is pinned (torch==2.13.0) and installed BEFORE the project, so that the project's
# `torch>=2.4` is already satisfied and pip never pulls another build. Then the project with its
# course tooling (editable), and the course root on the venv's sys.path: checks/ and coursegrade/ are
# the instructor's side and not part of the package. Extra setup steps (system packages, static
# assets) live in setup.d/*.sh, run in order, each safe to run twice. A failed step is named, with
# what to do; running `make setup` again resumes (finished steps are quick no-ops).
$(STAMP): pyproject.toml $(wildcard setup.d/*.sh)
	@fail() { echo "" >&2; echo "make setup: FAILED at step: $$1" >&2; echo "  $$2" >&2; \
	          echo "  Then run 'make setup' again: it resumes (finished steps are quick no-ops)." >&2; exit 1; }; \
	if [ ! -x $(PY) ]; then \
	    echo "setup: [venv] python3 -m venv $(VENV)"; \
	    python3 -m venv $(VENV) || fail venv "Install Python >= 3.10 with its venv module (Debian/Ubuntu: apt-get install python3-venv)."; \
	fi; \
	echo "setup: [torch] pip install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),(from pip's configured sources))"; \
	echo "       (a download of about 190 MB for the CPU build, about 2.7 GB for PyPI's Linux CUDA build; nothing if pip has it)"; \
	$(PY) -m pip install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0 \
	    || fail torch "pip could not install torch==2.13.0: check the network or the index (TORCH_INDEX=...), and the disk space."; \
	echo "setup: [course] pip install -e \".[course]\" (about 190 packages, 1.8 GB with torch; jupyter-book, nbgrader, pytest, dask, ...)"; \
	$(PY) -m pip install -e ".[course]" \
	    || fail course "pip could not install the project's course tooling: read pip's message above."; \
	echo "setup: [course root] $(CURDIR) on the venv's sys.path (rnn-course-root.pth)"; \
	$(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "rnn-course-root.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)" \
	    || fail "course root" "could not write into the venv's site-packages."; \
	for step in $(SETUP_STEPS); do \
	    echo "setup: [$$step]"; \
	    bash "$$step" || fail "$$step" "Read its message above (the first lines of $$step say what it installs and why)."; \
	done
	@touch $(STAMP)
	@echo "setup: done ($(VENV))"

book: $(STAMP)
	$(VENV)/bin/jupyter-book build -W -n --keep-going .
	@echo ""
	@echo "The book is in $(CURDIR)/_build/html"
	@echo "Serve it locally (search and downloads need a server): python -m http.server -d _build/html 8000   then open http://127.0.0.1:8000"

# The whole book as one PDF (TeX Live from setup.d/50-pdf.sh), after `make book`: the executed
# notebooks come from the same cache, so nothing runs twice.
pdf: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder pdflatex
	@echo "The PDF is $(CURDIR)/_build/latex/book.pdf"

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

# Regenerate the student notebooks in exercises/ from solutions/ (run after editing a solution).
exercises: $(STAMP)
	for d in solutions/ps*/; do $(VENV)/bin/nbgrader generate_assignment $$(basename $$d) --force --no-db; done

# A student's environment, as the README's "For students" lines make it (no root, no course tooling):
# the package alone, with Jupyter to open the notebooks. From ps05 on, torch too: see the README.
student:
	python3 -m venv $(STUDENT_VENV)
	$(STUDENT_VENV)/bin/python -m pip install -e . jupyterlab
	@echo ""
	@echo "Done. Start Jupyter with:  $(STUDENT_VENV)/bin/jupyter lab"
	@echo "From ps05 (chapter 6) on, add PyTorch:  $(STUDENT_VENV)/bin/python -m pip install -e \".[torch]\""

clean:
	rm -rf _build

# Mutation testing with mutmut (benchmarks/mutation.py), module by module: rnnlib on one CPU (about an
# hour; benchmarks/results/mutation.json), then the hidden-test checks on two (benchmarks/results/
# mutation_checks.json). Not part of `make test` (tests/test_mutation.py runs a tiny one of each).
.PHONY: mutation
mutation: $(STAMP)
	nice $(PY) benchmarks/mutation.py
	nice $(PY) benchmarks/mutation.py --package checks --max-children 2
