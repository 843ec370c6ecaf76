# zkconductor developer and CI entry points.
#   make test   set everything up on a fresh Debian machine (venv, ZooKeeper from Debian's package),
#               then lint, type-check and run the whole test suite (chaos included).
#   make demo   start a local ZooKeeper and two conductors, post jobs, SIGKILL one owner mid-flow and
#               show the other resuming it.
#   make bench  run every benchmark in bench/ (installs the bench extra: TaskFlow, psutil).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test check pytest demo bench zookeeper venv clean

test: venv zookeeper check pytest

zookeeper:
	@if [ -n "$$ZOOKEEPER_CLASSPATH" ] || [ -f /usr/share/java/zookeeper.jar ]; then \
		echo "zookeeper: found"; \
	else \
		echo "zookeeper: installing Debian's zookeeper package"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper \
		|| { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper; }; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
		echo "venv: installing Debian's python3-venv (Debian ships ensurepip apart)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv \
		|| { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) tools/check_imports.py

pytest: venv zookeeper
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv zookeeper
	$(PY) -m conductor.demo.run

bench: $(VENV)/.bench-installed zookeeper
	for b in bench/[a-z]*.py; do echo "== $$b"; $(PY) -P $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
