"""Observability: the local Prometheus and Alertmanager configuration (``config``), the
endpoints processes announce to Prometheus (``targets``), and the webhook receiver that keeps
what Alertmanager reports (``receiver``). docs/OPERATIONS.md describes the alerts."""
