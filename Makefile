VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run test lint bench translations browser

CATALOGS := $(patsubst %.po,%.mo,$(wildcard gateway/web/translations/*/LC_MESSAGES/messages.po))

install: $(VENV)/.installed $(CATALOGS)

# The pages' message catalogues, compiled here (never committed).
gateway/web/translations/%/LC_MESSAGES/messages.mo: gateway/web/translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile -d gateway/web/translations -l $*

# After changing a page's text: extract it and merge it into every language's catalogue.
translations: $(VENV)/.installed
	cd gateway/web && ../../$(BIN)/pybabel extract -F babel.cfg -k _ --no-location -o translations/messages.pot .
	$(BIN)/pybabel update -i gateway/web/translations/messages.pot -d gateway/web/translations -w 100

# Debian's chromium and its driver, for the browser tests. Installed when missing and we may
# (root, or sudo without a password); otherwise the browser tests skip and say why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
	  || echo "could not install chromium: the browser tests will be skipped"; \
	elif sudo -n true 2>/dev/null; then sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
	  || echo "could not install chromium: the browser tests will be skipped"; \
	else echo "chromium/chromedriver missing (apt-get install chromium chromium-driver): the browser tests will be skipped"; fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[postgres,test]"
	touch $@

# The development issuer lives at $(GATEWAY_ISSUER)/dev-issuer: on the port served, so that
# signing in to the pages finds it.
run: export GATEWAY_ISSUER ?= http://127.0.0.1:$(PORT)
run: export GATEWAY_LOG_FORMAT ?= text
run: install
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed --port $(PORT)
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT) --no-debugger --no-reload

# Two pytest workers (pytest-xdist), a test file per worker at a time (its module fixtures stay
# one per file); every test makes its own databases, queue names and ports. TEST_WORKERS=0 runs
# in one process.
TEST_WORKERS ?= 2
test: install browser
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .

# wrk (Debian package), the load generator: installed when missing and we may (root or sudo -n).
bench: install
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; \
	  else sudo -n apt-get update && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; fi; }
	$(BIN)/python bench/run.py
