"""Tools that stand in for the outside world on one machine (the local Finnhub-compatible feed):
used by the demo, the benchmarks and the tests, never by the pipeline's own processes."""
