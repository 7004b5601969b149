# One way to run every check. CI calls `make test` (see .ci/run).
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
TYPED  := iot_gateway devices simulators bcc portal bcc_common bcc_contract grafana bench mosquitto tests

.PHONY: demo test lint format venv sysdeps sysdeps-demo bench clean grafana-check lighthouse locale i18n-extract
LH_DIR   := tools/lighthouse
LH_STAMP := $(LH_DIR)/node_modules/.installed-$(shell sha1sum $(LH_DIR)/package-lock.json | cut -c1-12)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) locale

# The portal's texts (docs/portal.md, "Languages"): each .po compiled to the .mo the portal reads; a .po
# newer than its .mo is compiled again (the portal itself compiles a stale one in memory, never serving it).
PO := $(wildcard portal/locale/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)
portal/locale/%/LC_MESSAGES/messages.mo: portal/locale/%/LC_MESSAGES/messages.po $(STAMP)
	$(VENV)/bin/pybabel compile -l $* -i $< -o $@

locale: $(MO)

# Every message id the code and templates use, for a translator's reference (not committed).
I18N_KEYWORDS := -k t -k tn:1,2 -k translate -k translate_n:1,2
i18n-extract: venv
	$(VENV)/bin/pybabel extract -F babel.cfg $(I18N_KEYWORDS) --no-location -o portal/locale/messages.pot .

# Lighthouse for the portal's page-quality test (tests/portal/test_lighthouse.py), pinned by its lock file.
$(LH_STAMP): $(LH_DIR)/package-lock.json
	cd $(LH_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lighthouse: sysdeps $(LH_STAMP)

sysdeps-demo:
	@scripts/sysdeps.sh demo

sysdeps:
	@scripts/sysdeps.sh test

demo: sysdeps-demo venv
	$(VENV)/bin/bcc demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(TYPED)

# Coverage of the product packages ([tool.coverage.run] in pyproject.toml); files at 100 % are not listed.
test: sysdeps venv lint grafana-check lighthouse
	$(VENV)/bin/pytest -q --cov --cov-report=term:skip-covered

# Generated dashboards must match their generator (docs/grafana.md).
grafana-check: venv
	@tmp=$$(mktemp -d) && $(VENV)/bin/bcc grafana build --out $$tmp >/dev/null && \
	  diff -ru grafana/dashboards $$tmp && rm -rf $$tmp || \
	  { echo "grafana/dashboards drifted: run 'bcc grafana build'"; rm -rf $$tmp; exit 1; }

bench: sysdeps venv
	$(VENV)/bin/bcc bench command --json

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -f $(MO) portal/locale/messages.pot
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
