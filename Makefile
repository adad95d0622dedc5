# Entry points: `make run` (the demo, embedded defaults), `make createsuperuser`
# and `make user NAME=alice` (accounts for the demo, with the venv's Python),
# `make test` (everything the suite needs, then the suite; .ci/run calls it)
# and `make matrix` (the version-dependent tests on every supported Django,
# Channels and Daphne release, noxfile.py; longer, so not part of `make test`).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run createsuperuser user test matrix system-packages

$(VENV)/.installed: requirements.txt requirements-test.txt
	python -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runserver 127.0.0.1:8000

createsuperuser: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createsuperuser

user: $(VENV)/.installed
	@test -n "$(NAME)" || { echo "Name the user: make user NAME=alice"; exit 2; }
	$(PY) manage.py migrate --noinput
	$(PY) manage.py adduser "$(NAME)"

system-packages:
	@if ! command -v redis-server >/dev/null || ! test -x /usr/bin/chromium; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server chromium; \
	fi

test: system-packages $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

matrix: system-packages $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-matrix.txt
	$(PY) -m nox
