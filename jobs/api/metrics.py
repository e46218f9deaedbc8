"""Request counts, latency histograms and the service's gauges, through
``prometheus_client`` on a registry of the app's own. Labels come from a closed set:
a method outside the HTTP ones and a path that matched no route are folded into
``other`` and ``unmatched``, so a client cannot grow the series."""
from __future__ import annotations

from typing import Callable

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # no `_created` twin of every series

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("verifier_requests", "HTTP requests by route, method and status.",
                                 ("route", "method", "status"), registry=self.registry)
        self._seconds = Histogram("verifier_request_seconds", "Request latency by route and method.",
                                  ("route", "method"), buckets=BUCKETS, registry=self.registry)
        self._gauges: dict[str, Gauge] = {}

    def observe(self, route: str | None, method: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the matched route's path template."""
        route = route or "unmatched"
        method = method if method in METHODS else "other"
        self._requests.labels(route, method, str(status)).inc()
        self._seconds.labels(route, method).observe(seconds)

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read when scraped (declared again, e.g. by a restarted app: it
        reads the new function)."""
        if name not in self._gauges:
            self._gauges[name] = Gauge(name, help_text, registry=self.registry)
        self._gauges[name].set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
