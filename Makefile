# Two entry points for a fresh machine (Python 3.11, make, pip):
#   make serve   set up, build papers.db if needed, serve it on http://127.0.0.1:8001
#   make test    set up (Python packages and Debian's chromium), run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve build lab test browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

build: $(STAMP)
	$(BIN)/python build_db.py

serve: $(STAMP)
	$(BIN)/python -m neuroai_papers.site serve

# JupyterLab on notebooks/, with papers.db built (the notebooks find it at ../papers.db).
lab: $(STAMP)
	$(BIN)/python -m neuroai_papers.site prepare
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Browser tests drive Debian's chromium (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; \
	fi
	@/usr/bin/chromium --version

test: $(STAMP) browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) papers.db test-output build
