# The two commands of the README. Each sets up what it needs (venvs, jars, services).
.PHONY: demo test test-fast test-slow test-secure test-brokers lint bootstrap

bootstrap:
	@infra/bootstrap.sh

demo: bootstrap
	.venv/bin/ticklake demo

test: bootstrap
	.venv/bin/python -m pytest -q --durations=25

test-fast: bootstrap
	.venv/bin/python -m pytest -q -m "not integration and not slow"

test-slow: bootstrap
	.venv/bin/python -m pytest -q -m slow

# The import contract of pyproject.toml (layers that import one way); the test suite runs it too.
lint: bootstrap
	.venv/bin/lint-imports

test-secure: bootstrap
	infra/test-secure.sh

test-brokers: bootstrap
	infra/test-brokers.sh
