"""Prometheus metrics: request counts and latencies per endpoint, orders by outcome."""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_http_requests_total", "HTTP requests",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("gateway_http_request_seconds", "HTTP request latency",
                                 ["endpoint"], registry=self.registry)
        self.orders = Counter("gateway_orders_total", "Orders by outcome", ["outcome"],
                              registry=self.registry)


def init_app(app: Flask) -> None:
    m = Metrics()
    app.extensions["gateway.metrics"] = m

    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        endpoint = request.endpoint or "unmatched"
        m.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if "started" in g:
            m.latency.labels(endpoint).observe(time.perf_counter() - g.started)
        return response


def render() -> bytes:
    from flask import current_app

    return generate_latest(current_app.extensions["gateway.metrics"].registry)


def count_order(outcome: str) -> None:
    from flask import current_app, has_app_context

    if not has_app_context():  # a use case run outside the app (the fast unit tier)
        return
    m = current_app.extensions.get("gateway.metrics")
    if m is not None:
        m.orders.labels(outcome).inc()
