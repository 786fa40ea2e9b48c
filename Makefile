# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Each creates .venv and installs what it needs; nothing depends on a hand install.
PYTHON ?= python3
export OMP_WAIT_POLICY ?= PASSIVE
VENV   := .venv
BIN    := $(VENV)/bin
# the exact versions installed (see its header; `make lock` refreshes it)
LOCK   := .ci/constraints.txt
LOCK_VENV := .venv-lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

DEMO_DATA   ?= data/raw/demo
DEMO_AS_OF  ?= 2024-07-01
DEMO_SIZE   ?= 20000
DEMO_TRIALS ?= 10

.PHONY: demo test java chromium venv lock clean-demo

# $(call install_into,DIR,PIP_ARGS): a fresh venv at DIR with pip and the package with its dev
# extras; the one install both .venv (pinned: -c $(LOCK)) and `make lock` (the ranges) go through.
define install_into
$(PYTHON) -m venv $(1)
$(1)/bin/python -m pip install --quiet --upgrade pip $(2)
$(1)/bin/python -m pip install --quiet -e ".[dev]" $(2)
endef

venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed; set PYTHON=python3.11")'
	$(call install_into,$(VENV),-c $(LOCK))
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# PySpark (the features' second engine) needs a Java runtime; install Debian's if there is none.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing a Java runtime for PySpark (Debian package default-jre-headless)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jre-headless >/dev/null; }

# The report's browser test drives Debian's Chromium (Playwright without `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Chromium for the report's browser test (Debian packages chromium, chromium-driver)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(STAMP)
	$(BIN)/customer-value simulate --customers $(DEMO_SIZE) --seed 7 --out $(DEMO_DATA)
	$(BIN)/customer-value validate --data $(DEMO_DATA)
	$(BIN)/customer-value train --data $(DEMO_DATA) --as-of $(DEMO_AS_OF) --experiment demo \
	    --trials $(DEMO_TRIALS) --alias champion
	$(BIN)/customer-value score --data $(DEMO_DATA) --as-of $(DEMO_AS_OF) --model models:/customer_value@champion \
	    --out data/scores/demo.parquet --report data/reports/demo.html
	$(BIN)/customer-value compare --experiment demo
	@echo
	@echo "scores:    data/scores/demo.parquet"
	@echo "report:    data/reports/demo.html"
	@echo "MLflow:    mlflow/mlflow.db (artifacts in mlflow/artifacts); browse with: $(BIN)/customer-value ui"

test: $(STAMP) java chromium
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --timeout 900 -q

# Re-resolve pyproject.toml's ranges in a throwaway venv and pin what the registry serves today
# into $(LOCK); then run `make test` (it reinstalls .venv) before committing the new pins.
lock:
	rm -rf $(LOCK_VENV)
	$(call install_into,$(LOCK_VENV))
	{ grep '^#' $(LOCK); echo "pip==$$($(LOCK_VENV)/bin/python -m pip --version | cut -d' ' -f2)"; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV)

clean-demo:
	rm -rf $(DEMO_DATA) mlflow/mlflow.db mlflow/artifacts
