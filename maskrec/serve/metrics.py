"""What ``GET /metrics`` says, in Prometheus' text format (prometheus-client).

Each app has its own ``CollectorRegistry`` (no module-level state: two apps in one process, as in
the tests, count apart). The request counters and latency histograms are filled by ``Timing``, a
plain ASGI middleware, so every route is counted the same way, refusals (401, 413, 503) included;
the label is the route's template (``/v1/detect``), never a path that matched nothing, so a scan of
made-up URLs cannot grow the series ("unmatched" holds those).

The cameras' series (``serve --cameras``) are read from the hub when scraped (``watch_cameras``):
``maskrec_camera_up`` (1 while live), ``maskrec_camera_fps``, ``maskrec_camera_lag_seconds``
(quantile 0.5 and 0.95 over the last 10 s), ``maskrec_camera_people``, ``maskrec_camera_frames_total``
(processed) and ``maskrec_camera_decoded_frames_total``, ``maskrec_camera_reconnects_total``, each
labelled by camera name (never by source: it may hold credentials).
"""
from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# seconds: from a 5 ms health check to a 200 MP photo waiting behind a full queue
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, waiting: Callable[[], float], running: Callable[[], float], ready: Callable[[], float]):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("maskrec_http_requests", "HTTP requests answered, by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("maskrec_http_request_duration_seconds", "time to answer a request, by route",
                                 ["route"], buckets=BUCKETS, registry=r)
        self.inference = Histogram("maskrec_inference_duration_seconds",
                                   "time on a worker: decoding, detection and classification", ["route"],
                                   buckets=BUCKETS, registry=r)
        self.faces = Counter("maskrec_faces", "faces returned, by label", ["label"], registry=r)
        self.rejected = Counter("maskrec_rejected_requests", "requests refused, by reason", ["reason"], registry=r)
        Gauge("maskrec_queue_depth", "admitted requests not yet on a worker", registry=r).set_function(waiting)
        Gauge("maskrec_workers_busy", "workers running a job", registry=r).set_function(running)
        Gauge("maskrec_model_ready", "1 when the model is loaded", registry=r).set_function(ready)

    def watch_cameras(self, statuses: Callable[[], list]) -> None:
        """Each scrape reads ``statuses()`` (``Hub.statuses``: CameraStatus items) into the camera series."""
        self.registry.register(_Cameras(statuses))

    def watch_events(self, events) -> None:
        """``maskrec_events_total{camera,rule}`` counted as each event is written (an outlet of
        ``cameras.events.Events``), and its dropped and failed counts read when scraped."""
        written = Counter("maskrec_events", "events written to events.jsonl, by camera and rule",
                          ["camera", "rule"], registry=self.registry)
        events.outlets.append(lambda rec: written.labels(rec["camera"], rec["rule"]).inc())
        Gauge("maskrec_events_dropped", "events and states dropped: the writer's queue was full",
              registry=self.registry).set_function(lambda: events.counts()["dropped"])
        Gauge("maskrec_events_failed", "events that could not be written (disk errors)",
              registry=self.registry).set_function(lambda: events.counts()["failed"])

    def text(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class Timing:
    """ASGI middleware: each HTTP request's route, status and time into ``metrics``."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500  # a response never started: the server's failure
        t = time.perf_counter()

        async def sent(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            # the router puts the matched route in scope; the docs' own routes (/docs, /openapi.json)
            # are fixed paths without one; a path that matched nothing (404) is "unmatched"
            route = getattr(scope.get("route"), "path", None) or (scope["path"] if status != 404 else "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"  # any token is a method to h11
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t)


class _Cameras:
    """A prometheus-client collector: the cameras' figures as they are when scraped (nothing to keep in step)."""

    def __init__(self, statuses: Callable[[], list]):
        self.statuses = statuses

    def describe(self):
        return []  # the series are known only when scraped; nothing to check for clashes at register time

    def collect(self):
        up = GaugeMetricFamily("maskrec_camera_up", "1 while the camera's stream is live", labels=["camera"])
        fps = GaugeMetricFamily("maskrec_camera_fps", "frames processed per second, last 10 s", labels=["camera"])
        lag = GaugeMetricFamily("maskrec_camera_lag_seconds", "capture to result, last 10 s",
                                labels=["camera", "quantile"])
        people = GaugeMetricFamily("maskrec_camera_people", "people in the latest frame", labels=["camera"])
        frames = CounterMetricFamily("maskrec_camera_frames", "frames processed", labels=["camera"])
        decoded = CounterMetricFamily("maskrec_camera_decoded_frames", "frames decoded (processed or dropped)",
                                      labels=["camera"])
        recon = CounterMetricFamily("maskrec_camera_reconnects", "times the stream came back after a drop",
                                    labels=["camera"])
        for s in self.statuses():
            up.add_metric([s.name], float(s.state == "live"))
            fps.add_metric([s.name], s.fps)
            for q, v in (("0.5", s.lag_p50_s), ("0.95", s.lag_p95_s)):
                if v is not None:
                    lag.add_metric([s.name, q], v)
            people.add_metric([s.name], s.people)
            frames.add_metric([s.name], s.frames)
            decoded.add_metric([s.name], s.decoded)
            recon.add_metric([s.name], s.reconnects)
        yield from (up, fps, lag, people, frames, decoded, recon)
