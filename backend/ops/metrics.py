"""Prometheus metrics: request count and latency by route template, WebSocket connections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Gauge

from backend.errors import Forbidden

# Grouping by the route template keeps label cardinality bounded (/api/users/{id}, not ids).
prometheus = PrometheusConfig(
    app_name="simplrefq",
    prefix="simplrefq",
    group_path=True,
    exclude=["^/metrics$", "^/static/"],
)

websocket_connections = Gauge(
    "simplrefq_websocket_connections",
    "WebSocket connections open",
    multiprocess_mode="livesum",
)


@dataclass(frozen=True, slots=True)
class MetricsReaders:
    """Metrics describe traffic and internals: only the scraper's addresses may read them."""

    allowed: str  # comma-separated addresses, or "*"

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        client = connection.client.host if connection.client else ""
        allowed = self.allowed
        if allowed.strip() != "*" and client not in {ip.strip() for ip in allowed.split(",")}:
            raise Forbidden("metrics are not served to this address")


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False
    opt = {"exclude_from_auth": True}
