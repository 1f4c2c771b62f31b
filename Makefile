# Shortcuts; the scripts in scripts/ do the work (they need nothing but Python 3.11+).
.PHONY: run test lint bench bench-quick
run:
	scripts/run
test:
	scripts/test
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy .
bench:
	.venv/bin/python -m bench.run
bench-quick:
	.venv/bin/python -m bench.run --quick
