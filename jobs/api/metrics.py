"""Request counts and latency histograms per route, in Prometheus' text format."""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, method, status)] += 1
            key = (route, method)
            counts = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[key] += seconds

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        lines = ["# HELP verifier_requests_total HTTP requests by route, method and status.",
                 "# TYPE verifier_requests_total counter"]
        with self._lock:
            for (route, method, status), n in sorted(self._requests.items()):
                lines.append(f'verifier_requests_total{{route="{route}",method="{method}",'
                             f'status="{status}"}} {n}')
            lines += ["# HELP verifier_request_seconds Request latency by route and method.",
                      "# TYPE verifier_request_seconds histogram"]
            for (route, method), counts in sorted(self._buckets.items()):
                labels = f'route="{route}",method="{method}"'
                for bound, n in zip(BUCKETS, counts):
                    lines.append(f'verifier_request_seconds_bucket{{{labels},le="{bound}"}} {n}')
                lines.append(f'verifier_request_seconds_bucket{{{labels},le="+Inf"}} {counts[-1]}')
                lines.append(f"verifier_request_seconds_sum{{{labels}}} {self._sums[(route, method)]:.6f}")
                lines.append(f"verifier_request_seconds_count{{{labels}}} {counts[-1]}")
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read():g}"]
        return "\n".join(lines) + "\n"
