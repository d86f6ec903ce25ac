"""The ``main`` of a batch Spark job: logging, the job's typed options (jobs/options.py) parsed
and checked before Spark starts (an error: a line and exit code 2, as the CLI's), then one Spark
session, stopped whatever happens."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pyspark.sql import SparkSession

from jobs.options import JobOptions
from jobs.session import build_session
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.logs import configure_logging, say


def run_job(doc: str | None, options_type: type[JobOptions], app_name: str,
            work: Callable[[SparkSession, Settings, JobOptions], int], argv: list[str] | None = None) -> int:
    """Parse ``argv`` into ``options_type`` (``add_arguments``, ``from_args``) and return
    ``work(spark, settings, options)``."""
    configure_logging()
    settings = Settings()
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    options_type.add_arguments(parser, settings)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        options = options_type.from_args(settings, args)
    except UserError as error:
        say(f"error: {error}")
        return 2
    spark = build_session(settings, app_name)
    spark.sparkContext.setLogLevel("WARN")
    try:
        return work(spark, settings, options)
    finally:
        spark.stop()
