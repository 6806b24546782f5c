# Two entry points for a fresh machine (Python 3.11, make, pip):
#   make serve   set up, build papers.db if needed, serve it on http://127.0.0.1:8001
#   make test    set up (Python packages and Debian's chromium), run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve build lab test browser clean

setup: $(STAMP)

# Two checks, two answers: a Python that is missing or too old is not cured by python3-venv.
$(STAMP): pyproject.toml
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 11))" 2>/dev/null || { echo "$(PYTHON) is not Python 3.11 or later (missing, too old, or it cannot run): install one, or name it, as in make serve PYTHON=python3.12"; exit 1; }
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { echo "$(PYTHON) cannot create a virtual environment: install python3-venv (Debian: apt-get install python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Adds the new dumps to papers.db (with nothing new, leaves the file untouched and says it is up
# to date); the build itself says why when it must build everything
# (a changed or removed dump, new build code, topic rules or organization reference, another
# version of Python's Unicode database, rapidfuzz or SQLite).
build: $(STAMP)
	$(BIN)/python build_db.py --incremental

serve: $(STAMP)
	$(BIN)/python -m neuroai_papers.site serve

# JupyterLab on notebooks/, with papers.db built (the notebooks find it at ../papers.db).
# Notebooks are saved without their outputs (JupyterLab autosaves): they are committed clean,
# which a test checks, and a commit after `make lab` would otherwise fail the publish run.
# LAB_ARGS go to JupyterLab as they are, e.g. make lab LAB_ARGS="--allow-root --no-browser
# --ip 127.0.0.1 --port 8888" (JupyterLab refuses to run as root without --allow-root).
LAB_ARGS ?=
lab: $(STAMP)
	$(BIN)/python -m neuroai_papers.site prepare
	$(BIN)/jupyter lab --notebook-dir=notebooks \
	  --FileContentsManager.pre_save_hook=neuroai_papers.notebooks.strip_outputs $(LAB_ARGS)

# Browser tests drive Debian's chromium (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  if [ -n "$$SUDO" ] && ! command -v sudo >/dev/null; then \
	    echo "installing chromium needs root: run as root, or install sudo"; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	fi
	@/usr/bin/chromium --version

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) papers.db papers.db-journal test-output build
