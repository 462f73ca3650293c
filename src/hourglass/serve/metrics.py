"""The service's counters in Prometheus' text exposition format (version 0.0.4), written out by hand.

Four families, each for one process (several workers behind one port each count their own; Prometheus
sums them over its scrape targets):

- ``hourglass_requests_total{endpoint, status}``: requests answered (WebSocket frames under ``/v1/stream``);
- ``hourglass_request_seconds{endpoint}``: a latency histogram;
- ``hourglass_batch_size``: a histogram of the crops per network call;
- ``hourglass_queue_depth``: crops waiting or running now (a gauge).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds (Prometheus client's defaults, stretched to 30 s: a batch on a CPU can take seconds)."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets, sum and count of observed values (Prometheus' histogram)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        pre = labels + "," if labels else ""
        bounds, counts = [*(f"{b:g}" for b in self.buckets), "+Inf"], [*self.counts, self.count]
        out = [f'{name}_bucket{{{pre}le="{b}"}} {n}' for b, n in zip(bounds, counts, strict=True)]
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {self.sum:.6f}", f"{name}_count{braces} {self.count}"]
        return out


class Metrics:
    """Thread-safe counters of one serving process; :meth:`render` gives the ``/metrics`` text.

    Example:
        >>> m = Metrics()
        >>> m.observe_request("/v1/predict", 200, 0.03)
        >>> m.observe_batch(4)
        >>> text = m.render(queue_depth=0)
        >>> 'hourglass_requests_total{endpoint="/v1/predict",status="200"} 1' in text
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._latency: dict[str, Histogram] = {}
        self._batches = Histogram(BATCH_BUCKETS)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(endpoint, int(status))] += 1
            self._latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self._batches.observe(size)

    def render(self, queue_depth: int) -> str:
        with self._lock:
            lines = [
                "# HELP hourglass_requests_total Requests answered, by endpoint and HTTP status.",
                "# TYPE hourglass_requests_total counter",
            ]
            for (endpoint, status), n in sorted(self._requests.items()):
                lines.append(f'hourglass_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += [
                "# HELP hourglass_request_seconds Time from a request's arrival to its answer.",
                "# TYPE hourglass_request_seconds histogram",
            ]
            for endpoint, hist in sorted(self._latency.items()):
                lines += hist.lines("hourglass_request_seconds", f'endpoint="{endpoint}"')
            lines += [
                "# HELP hourglass_batch_size Person crops per network call.",
                "# TYPE hourglass_batch_size histogram",
                *self._batches.lines("hourglass_batch_size"),
                "# HELP hourglass_queue_depth Person crops waiting for or in the network now.",
                "# TYPE hourglass_queue_depth gauge",
                f"hourglass_queue_depth {queue_depth}",
            ]
        return "\n".join(lines) + "\n"
