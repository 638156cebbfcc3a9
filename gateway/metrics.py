"""Prometheus metrics (design.md §8).

Counters and histograms are kept per process; under gunicorn (and beside it the RQ worker) set
`PROMETHEUS_MULTIPROC_DIR` and every process writes them to files there, which `/metrics`
aggregates (prometheus-client's multiprocess mode; `gateway/gunicorn_conf.py` sets it up).
State that lives in the database or the queue (queue depth, outbox lag, open and overdue cases,
webhook deliveries waiting) is read when scraped, so any process answers it for all.
"""

from __future__ import annotations

import os
import time

from flask import Flask, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

ORDER_OUTCOMES = {"order.created": "placed", "order.completed": "completed",
                  "order.rejected": "rejected", "order.withdrawn": "withdrawn"}


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_http_requests_total", "HTTP requests by route",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gateway_http_request_seconds", "HTTP request latency by route",
                                 ["route"], registry=self.registry)
        self.orders = Counter("gateway_orders_total", "Orders by route and outcome",
                              ["route", "outcome"], registry=self.registry)
        self.webhooks = Counter("gateway_webhook_deliveries_total",
                                "Webhook delivery attempts by outcome", ["outcome"],
                                registry=self.registry)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def init_app(app: Flask) -> None:
    m = Metrics()
    app.extensions["gateway.metrics"] = m

    @app.before_request
    def _start():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        # The URL rule, not the raw path: one series per route, not per id.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        m.requests.labels(route, request.method, str(response.status_code)).inc()
        if "started" in g:
            m.latency.labels(route).observe(time.perf_counter() - g.started)
        return response


def render() -> bytes:
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path)
    else:
        registry.register(current_app.extensions["gateway.metrics"].registry)
    registry.register(StateCollector(current_app._get_current_object()))
    return generate_latest(registry)


class StateCollector:
    """Gauges read from the database and the queue at scrape time."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        from adapters.models import AdvisorCase, OutboxMessage
        from gateway.database import session
        from gateway.webhooks.models import WebhookDelivery
        from tenants.db import utcnow

        db = session()
        now = utcnow()
        depth = GaugeMetricFamily("gateway_queue_depth", "Jobs waiting in the job queue")
        try:
            depth.add_metric([], self.app.extensions["gateway.queue"].depth())
        except Exception:  # the queue is down: say nothing rather than fail the scrape
            pass
        yield depth
        oldest = db.scalar(select(func.min(OutboxMessage.created_at))
                           .where(OutboxMessage.dispatched_at.is_(None)))
        yield GaugeMetricFamily("gateway_outbox_lag_seconds",
                                "Age of the oldest outbox message not yet handed to the queue",
                                value=(now - oldest).total_seconds() if oldest else 0.0)
        open_cases = db.scalar(select(func.count()).select_from(AdvisorCase)
                               .where(AdvisorCase.status == "open"))
        overdue = db.scalar(select(func.count()).select_from(AdvisorCase)
                            .where(AdvisorCase.status == "open", AdvisorCase.due_at < now))
        yield GaugeMetricFamily("gateway_advisor_cases_open", "Advisor cases not yet resolved",
                                value=open_cases)
        yield GaugeMetricFamily("gateway_advisor_cases_overdue", "Open advisor cases past due",
                                value=overdue)
        waiting = GaugeMetricFamily("gateway_webhook_deliveries", "Webhook deliveries by status",
                                    labels=["status"])
        counts = dict(db.execute(select(WebhookDelivery.status, func.count())
                                 .group_by(WebhookDelivery.status)).all())
        for status in ("pending", "succeeded", "failed"):
            waiting.add_metric([status], counts.get(status, 0))
        yield waiting
        db.commit()


def _metrics():
    try:
        return current_app.extensions.get("gateway.metrics")
    except RuntimeError:  # outside an app context
        return None


def count_order(outcome: str, route: str = "unknown") -> None:
    m = _metrics()
    if m is not None:
        m.orders.labels(route, outcome).inc()


def count_webhook(outcome: str) -> None:
    m = _metrics()
    if m is not None:
        m.webhooks.labels(outcome).inc()


# -- counted when the transaction that recorded it commits -------------------------------------
def order_event(db, type_: str, data: dict) -> None:
    """An order event was recorded in `db`: count it once its transaction commits."""
    outcome = ORDER_OUTCOMES.get(type_)
    if outcome is None:
        return
    route = data.get("route")
    if route is None and data.get("order_id"):
        from gateway.orders.models import Order

        with db.no_autoflush:
            order = db.get(Order, data["order_id"])  # in the session already: no query
        route = order.route_destination if order is not None else None
    db.info.setdefault("gateway.metrics", []).append((outcome, route or "unknown"))


@sa_event.listens_for(Session, "after_commit")
def _after_commit(db):
    for outcome, route in db.info.pop("gateway.metrics", ()):
        count_order(outcome, route)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(db):
    db.info.pop("gateway.metrics", None)
