# Every target is a small script under scripts/; see the comment at the top of each.
#
#   make demo                      the example site with demo data on http://127.0.0.1:8000/
#   make test                      the suite on SQLite and PostgreSQL (Python 3.11, Django 5.2)
#   make test PY=3.12 DJANGO=6.1   the same for another combination
#   make test ARGS="-x -k listing" extra pytest arguments
#   make bench                     python -m benchmarks
#   make docs                      the documentation, warnings as errors
#   make lint                      ruff check and ruff format --check (changes nothing)

PY ?= 3.11
DJANGO ?= 5.2
ARGS ?=
export PY DJANGO

.PHONY: demo test bench docs lint

demo:
	scripts/demo.sh

test:
	scripts/test.sh $(ARGS)

bench:
	scripts/bench.sh $(ARGS)

docs:
	scripts/docs.sh

lint:
	scripts/lint.sh
