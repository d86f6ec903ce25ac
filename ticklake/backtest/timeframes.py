"""Backtest timeframes and their pandas frequencies (kept free of heavy imports for the CLI)."""

TIMEFRAMES = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "1h", "1d": "1D"}
