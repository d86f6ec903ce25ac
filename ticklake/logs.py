"""Logging for ticklake processes: our messages at INFO, chatty libraries at WARNING."""
from __future__ import annotations

import logging

QUIET = ("py4j", "cassandra", "kafka", "websockets")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
