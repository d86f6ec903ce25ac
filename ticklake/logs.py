"""Logging for ticklake processes: our messages at INFO, chatty libraries at WARNING; and the
run log of a command that runs jobs: everything they print goes into one file under the state
folder, while the terminal shows ticklake's own lines and the engines' warnings. The Kafka
clients' own records (kafka-python's, and librdkafka's, which ``librdkafka_logging`` routes
through Python logging) are connection chatter to a person at the terminal: a command with a run
log writes them into the file only (``--verbose``: to the terminal too); ticklake reports the
failures that matter in its own words."""
from __future__ import annotations

import codecs
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

LIBRDKAFKA = "librdkafka"  # the logger of confluent-kafka's clients (librdkafka_logging)
QUIET = ("py4j", "cassandra", "kafka", LIBRDKAFKA, "websockets")
KAFKA_CLIENTS = ("kafka", LIBRDKAFKA)  # kafka-python's loggers are kafka.*
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def say(message: str) -> None:
    """A line for the person at the terminal (progress, errors), on stderr: ``[ticklake] message``."""
    print(f"[ticklake] {message}", file=sys.stderr, flush=True)


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT, handlers=[TerminalHandler()])
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def librdkafka_logging() -> dict:
    """The configuration that makes a confluent-kafka client log through Python logging (logger
    ``librdkafka``, served when the client is polled) instead of printing ``%4|...`` lines on stderr."""
    return {"logger": logging.getLogger(LIBRDKAFKA)}


def routine(record: logging.LogRecord) -> bool:
    """A Kafka client's own record (not ticklake's)."""
    return record.name.partition(".")[0] in KAFKA_CLIENTS


class TerminalHandler(logging.StreamHandler):
    """Log records to this process' stderr as it is at each record (a run log's copy of it);
    in a command with a run log, the Kafka clients' records into its file only, unless verbose."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass  # always the current stderr

    def emit(self, record: logging.LogRecord) -> None:
        log = _current
        if log is not None and not log.verbose and routine(record):
            try:
                log.write(self.format(record) + "\n")
            except Exception:  # as logging does: a record that cannot be written never stops the program
                self.handleError(record)
            return
        super().emit(record)


class _Tee(io.TextIOBase):
    """A text stream that writes to ``stream`` and, whole lines at a time, to the run log."""

    def __init__(self, stream: IO[str], log: RunLog) -> None:
        self.stream, self.log, self.pending = stream, log, ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        lines, _, self.pending = (self.pending + text).rpartition("\n")
        if lines:
            self.log.write(lines + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding


class RunLog:
    """The log file of one command. Spark jobs started through ``spark_submit`` write their full
    log into it (``environment``); what they print is copied to the terminal and into the file
    (``run``); so is everything this process prints."""

    def __init__(self, path: Path, verbose: bool) -> None:
        self.path, self.verbose = path, verbose
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")  # appends: the jobs' JVMs write to it too

    def write(self, text: str) -> None:
        with self.lock:
            if not self.file.closed:  # a logging handler may outlive the command (tests run several)
                self.file.write(text)
                self.file.flush()

    def environment(self) -> dict[str, str]:
        """What a job's ``spark-submit.sh`` needs to log to this file (infra/spark/log4j2.properties)."""
        return {"TICKLAKE_JOB_LOG": str(self.path), "TICKLAKE_JOB_CONSOLE_LEVEL": "info" if self.verbose else "warn"}

    def run(self, command: list[str], **popen) -> int:
        """Run ``command``, its output copied as it comes to this process' stdout and stderr (and
        so into the file); its exit code. A progress bar of the command stays a bar on a terminal
        (``TICKLAKE_STDERR_TTY``)."""
        proc = self.start(command, **popen)
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C: the job gets it too (same process group); wait for its end
            code = proc.wait()
            raise
        finally:
            self.finish(proc)
        return code

    def start(self, command: list[str], **popen) -> subprocess.Popen:
        """Start ``command`` as ``run`` does, without waiting; ``finish`` it once it has ended."""
        env = {**popen.pop("env", os.environ), "TICKLAKE_STDERR_TTY": "1" if sys.stderr.isatty() else "0"}
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **popen)
        proc.copies = [threading.Thread(target=_copy, args=(pipe, target), daemon=True)
                       for pipe, target in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
        for copy in proc.copies:
            copy.start()
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen) -> None:
        """Wait until the output of a ``start``-ed command that has ended is copied."""
        for copy in proc.copies:
            copy.join()

    def child_output(self) -> IO[str] | None:
        """Where a helper process' output goes: the terminal with ``verbose``, else only the file."""
        return None if self.verbose else self.file


def _copy(pipe: IO[bytes], target: IO[str]) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with pipe:
        while chunk := pipe.read1(65536):
            target.write(decoder.decode(chunk))
            target.flush()


_current: RunLog | None = None


def current() -> RunLog | None:
    """The run log of this command, if it has one."""
    return _current


@contextmanager
def run_log(state_dir: Path, command: str, verbose: bool) -> Iterator[RunLog]:
    """A run log ``<state_dir>/logs/<command>-<UTC time>.log`` for the duration: this process'
    stdout, stderr and logging go into it as well."""
    global _current
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log = RunLog(state_dir / "logs" / f"{command}-{stamp}-{os.getpid()}.log", verbose)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
    _current = log
    try:
        yield log
    finally:
        _current = None
        for tee in (sys.stdout, sys.stderr):
            if isinstance(tee, _Tee) and tee.pending:
                log.write(tee.pending + "\n")
        sys.stdout, sys.stderr = streams
        log.file.close()


@contextmanager
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
