# Two commands do everything on a fresh machine: `make demo` and `make test` (see README.md).
VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# axe-core (the accessibility rules the browser tests run in every page), from the npm registry.
AXE_VERSION := 4.14.1
AXE     := .cache/axe-core-$(AXE_VERSION)/axe.min.js

.PHONY: demo test lint unit system-deps axe bench messages mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vigor demo

system-deps:
	bash scripts/system-deps

axe: $(AXE)

$(AXE):
	mkdir -p $(@D)
	cd $(@D) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar -xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js && rm axe-core-$(AXE_VERSION).tgz

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy server
	if [ -f client_agent/__init__.py ]; then $(VENV)/bin/mypy --strict client_agent; fi

# Python may cache compiled modules during the tests even where the environment says not to
# (PYTHONDONTWRITEBYTECODE): the suite starts hundreds of `vigor`, agent and gunicorn processes,
# and pytest rewrites its plugins' modules anew in each worker, each compiling from source.
test: system-deps axe lint
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Mutation testing of the security-critical modules against their unit tests (not part of `test`):
# fails, naming each, on a surviving mutant not reviewed in tests/mutation-survivors.toml.
# See scripts/mutation.py; about 5 minutes on 2 cores (some 2,250 mutants).
mutation: $(STAMP)
	$(VENV)/bin/python scripts/mutation.py

bench: $(STAMP)
	bash scripts/system-deps --bench
	$(VENV)/bin/python bench/upload.py
	$(VENV)/bin/python bench/upload.py --via-nginx
	$(VENV)/bin/python bench/check.py
	$(VENV)/bin/python bench/agent.py
	$(VENV)/bin/python bench/delta.py

# Customer-facing text: extract the English sentences (babel.cfg says where) into the template,
# then merge it into every language's catalogue; a unit test names what is left to translate.
MESSAGES := server/translations
messages: $(STAMP)
	$(VENV)/bin/pybabel extract --mapping-file=babel.cfg --add-location=file --sort-by-file \
		--no-wrap --add-comments=TRANSLATORS: --project=Vigor \
		--header-comment="# The customer-facing text of Vigor, in English (the source language)." \
		--output-file=$(MESSAGES)/messages.pot server
	$(VENV)/bin/pybabel update --input-file=$(MESSAGES)/messages.pot --output-dir=$(MESSAGES) \
		--no-wrap --ignore-obsolete

clean:
	rm -rf $(VENV) .cache instance releases/?? mutants .pytest_cache .mypy_cache .ruff_cache
