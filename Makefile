# The two commands of the README. Each sets up what it needs (venvs, jars, services).
.PHONY: demo test test-fast test-slow test-secure test-brokers lint bootstrap

bootstrap:
	@infra/bootstrap.sh

demo: bootstrap
	.venv/bin/ticklake demo

# The whole suite, then its secure-profile subset on a stack of its own (README, "Tests"); both
# always run, and either failing fails the target.
test: bootstrap
	status=0; .venv/bin/python -m pytest -q --durations=25 || status=$$?; \
	infra/test-secure.sh --durations=10 || status=$$?; exit $$status

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
