"""Prometheus metrics: request count and latency by route template, WebSocket connections."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Gauge

# Grouping by the route template keeps label cardinality bounded (/api/users/{id}, not ids).
prometheus = PrometheusConfig(
    app_name="simplrefq",
    prefix="simplrefq",
    group_path=True,
    exclude=["^/metrics$", "^/static/"],
)

websocket_connections = Gauge(
    "simplrefq_websocket_connections",
    "WebSocket connections open on this process",
    multiprocess_mode="livesum",
)


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    opt = {"exclude_from_auth": True}
