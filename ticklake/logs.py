"""Logging for ticklake processes: our messages at INFO, chatty libraries at WARNING."""
from __future__ import annotations

import contextlib
import logging

QUIET = ("py4j", "cassandra", "kafka", "websockets")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


@contextlib.contextmanager
def silenced(*names: str):
    """Drop the records of these loggers for a while: attempts expected to fail (a probe, a
    login tried with the default password) whose failures the caller reports itself."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
