"""The webhook receiver Alertmanager notifies: it logs every notification and keeps the alerts
that are firing, for ``ticklake alerts --ops`` and ``ticklake status``.

``POST /webhook/<severity>`` takes Alertmanager's webhook payload (version 4); ``GET /alerts``
returns the firing alerts as JSON; ``GET /metrics`` counts notifications. Every notification
is a line of ``<data>/notifications.jsonl``; the firing alerts are kept in ``<data>/firing.json``
so a restart forgets nothing. A request it cannot read is answered 400 and counted.
Run by ``ticklake up`` as ``python -m ticklake.monitoring.receiver``.
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

log = logging.getLogger("ticklake.receiver")
MAX_BODY = 1 << 20


class AlertBook:
    """The firing alerts by fingerprint, and the notification log."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = data_dir / "notifications.jsonl"
        self.firing_file = data_dir / "firing.json"
        self.lock = threading.Lock()
        try:
            self.firing: dict[str, dict] = json.loads(self.firing_file.read_text())
        except (OSError, ValueError):
            self.firing = {}
        r = self.registry = CollectorRegistry()
        self.notifications = Counter("ticklake_alert_notifications_total", "Notifications received, by route and status",
                                     ["route", "status"], registry=r)
        self.refused = Counter("ticklake_alert_notifications_refused_total", "Requests that were no notification",
                               registry=r)
        Gauge("ticklake_alerts_firing", "Alerts firing, as last notified", registry=r).set_function(
            lambda: len(self.firing))

    def record(self, route: str, payload: dict) -> None:
        alerts = payload["alerts"]
        if not isinstance(alerts, list):
            raise ValueError("'alerts' is not a list")
        with self.lock:
            for alert in alerts:
                key = alert.get("fingerprint") or json.dumps(alert["labels"], sort_keys=True)
                if alert["status"] == "firing":
                    self.firing[key] = {"route": route, "labels": alert["labels"],
                                        "annotations": alert.get("annotations", {}), "startsAt": alert.get("startsAt")}
                else:
                    self.firing.pop(key, None)
            with open(self.log_file, "a", encoding="utf-8") as out:
                out.write(json.dumps({"received_at": time.time(), "route": route, **payload}) + "\n")
            temporary = self.firing_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.firing))
            temporary.replace(self.firing_file)
        self.notifications.labels(route, str(payload.get("status"))).inc()

    def current(self) -> list[dict]:
        with self.lock:
            return sorted(self.firing.values(), key=lambda a: (a["labels"].get("alertname", ""), a.get("startsAt") or ""))


def handler_for(book: AlertBook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            route = self.path.removeprefix("/webhook/")
            if not self.path.startswith("/webhook/") or not route:
                return self._reply(HTTPStatus.NOT_FOUND, b"POST to /webhook/<severity>\n")
            try:
                length = int(self.headers.get("Content-Length", "0"))
                if not 0 < length <= MAX_BODY:
                    raise ValueError(f"body of {length} bytes")
                payload = json.loads(self.rfile.read(length))
                book.record(route, payload)
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                book.refused.inc()
                log.warning("refused a notification: %s", error)
                return self._reply(HTTPStatus.BAD_REQUEST, f"not an Alertmanager notification: {error}\n".encode())
            log.info("%s: %s %s", route, payload.get("status"),
                     ", ".join(sorted({a["labels"].get("alertname", "?") for a in payload["alerts"]})))
            self._reply(HTTPStatus.OK, b"ok\n")

        def do_GET(self) -> None:
            if self.path == "/alerts":
                return self._reply(HTTPStatus.OK, json.dumps(book.current()).encode(), "application/json")
            if self.path == "/metrics":
                return self._reply(HTTPStatus.OK, generate_latest(book.registry), "text/plain; version=0.0.4")
            if self.path == "/health":
                return self._reply(HTTPStatus.OK, b"ok\n")
            self._reply(HTTPStatus.NOT_FOUND, b"GET /alerts, /metrics or /health\n")

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            log.debug(format, *args)

    return Handler


def make_server(host: str, port: int, data_dir: Path) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), handler_for(AlertBook(data_dir)))


ALERT_COLUMNS = ["alert", "severity", "since", "instance", "summary"]


@dataclass
class FiringAlert:
    alert: str
    severity: str
    since: str
    instance: str
    summary: str


def firing(port: int, timeout: float = 3.0) -> list[FiringAlert]:
    """The alerts the receiver on ``port`` knows to be firing; OSError if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/alerts", timeout=timeout) as response:
            alerts = json.load(response)
    except (urllib.error.URLError, ValueError) as error:
        raise OSError(f"the alert receiver on 127.0.0.1:{port} does not answer ({error})") from None
    return [FiringAlert(a["labels"].get("alertname", "?"), a["labels"].get("severity", a["route"]),
                        (a.get("startsAt") or "")[:19].replace("T", " "), a["labels"].get("instance", ""),
                        a["annotations"].get("summary", "")) for a in alerts]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ticklake.monitoring.receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(args.host, args.port, args.data_dir)
    log.info("receiving alerts on http://%s:%d/webhook/<severity>", args.host, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
