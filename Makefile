# Shortcuts; the scripts in scripts/ do the work (they need nothing but Python 3.11+).
.PHONY: run test lint bench bench-quick bench-rolling
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
bench-rolling:
	.venv/bin/python -m bench.rolling
.PHONY: bench-provider
bench-provider:
	.venv/bin/python -m bench.provider
