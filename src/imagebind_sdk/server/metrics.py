"""Prometheus metrics of one app (its own registry, so several apps in a process don't clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

# Batch sizes are small integers; powers of two up to the largest sensible --max-batch-size.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Estimated GFLOPs of a call (--max-batch-gflops, default 2048) and calls an item waited.
GFLOPS_BUCKETS = (1, 4, 16, 64, 256, 1024, 2048, 4096, 16384, 65536)
WAITED_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
PREFIX = "imagebind"


class Metrics:
    """Requests by endpoint and status, items by kind, batch sizes, queue depth, latencies."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram(f"{PREFIX}_request_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(f"{PREFIX}_requests_in_flight", "HTTP requests being served", registry=r)
        self.items = Counter(f"{PREFIX}_items", "Items embedded", ["kind"], registry=r)
        self.batch_size = Histogram(f"{PREFIX}_batch_size", "Items per encoder call", ["kind"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram(f"{PREFIX}_batch_seconds", "Encoder call time", ["kind"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.batch_gflops = Histogram(f"{PREFIX}_batch_gflops", "Estimated GFLOPs per encoder call", ["kind"],
                                      buckets=GFLOPS_BUCKETS, registry=r)
        self.lane_calls = Counter(f"{PREFIX}_lane_calls", "Encoder calls by lane", ["lane"], registry=r)
        self.lane_queue_depth = Gauge(f"{PREFIX}_lane_queue_depth", "Items waiting for the encoder by lane",
                                      ["lane"], registry=r)
        self.calls_waited = Histogram(f"{PREFIX}_calls_waited", "Encoder calls started after an item arrived "
                                      "and before its first one", ["lane"], buckets=WAITED_BUCKETS, registry=r)
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth", "Items waiting for the encoder", ["kind"], registry=r)
        self.pending = Gauge(f"{PREFIX}_pending_items", "Items admitted and not yet answered", registry=r)
        self.inflight_bytes = Gauge(f"{PREFIX}_inflight_bytes", "Request bodies and decoded inputs "
                                    "reserved against --max-inflight-mb", registry=r)
        self.cache_hits = Counter(f"{PREFIX}_cache_hits", "Items answered from the content cache", ["kind"],
                                  registry=r)
        self.cache_misses = Counter(f"{PREFIX}_cache_misses", "Items looked up in the content cache and "
                                    "not found", ["kind"], registry=r)
        self.cache_bytes = Gauge(f"{PREFIX}_cache_bytes", "Bytes held by the content cache (--cache-mb)", registry=r)
        self.cache_entries = Gauge(f"{PREFIX}_cache_entries", "Items held by the content cache", registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected", "Requests refused because the queue was full", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
