"""Backtests over the lake's bars: pure, vectorised pieces (resampling, strategies, the execution
engine, metrics, reports) that the Spark job ``jobs/backtest.py`` distributes. See docs/BACKTESTS.md."""
