"""Following cameras from elsewhere (the Cameras page): one ``serve`` over HTTP, or every serve
process that publishes to an MQTT broker.

    feed = ServeFeed("http://127.0.0.1:8000", key=None)
    feed.cameras()            # [{"name", "state", "people", "masked_share", "fps", "lag_p50_s", ...}]
    feed.frame("door")        # the latest annotated frame, JPEG bytes (None before the first)
    feed.events(camera="door", since=t0, limit=50); feed.picture(event_id)  # the evidence JPEG
    feed.states(camera="door", since=t0); feed.people(camera="door", since=t0)
    feed.swap(operating_point="crops")          # POST /v1/model

    feed = BrokerFeed("127.0.0.1", 1883, prefix="maskrec").start()   # a paho subscriber on its own thread
    feed.cameras(); feed.events(); feed.states(camera="door")         # what arrived since it started

An MQTT message carries no picture: a broker feed has states and events but no frames nor evidence
(those stay on each machine's disk and API). Every failure is ``FeedError`` with one clear line.
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque

from maskrec.cameras.sinks import PRESENCE

TIMEOUT_S = 5.0
KEEP = 5000  # events and states a broker feed keeps in memory (newest)


class FeedError(Exception):
    """The server or broker could not be read: the reason in one line."""


class ServeFeed:
    def __init__(self, url: str, key: str | None = None, timeout_s: float = TIMEOUT_S):
        self.url, self.key, self.timeout_s = url.rstrip("/"), key or None, timeout_s

    def _get(self, path: str, params: dict | None = None, raw: bool = False, body: dict | None = None,
             timeout_s: float | None = None):
        q = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(q)}" if q else "")
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(url, data, headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            if e.code == 404 and raw:
                return None
            try:
                why = json.loads(e.read()).get("error", "")
            except ValueError:
                why = ""
            raise FeedError(f"{self.url} answered {e.code}{': ' + why if why else ''}") from None
        except (urllib.error.URLError, OSError) as e:
            raise FeedError(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None
        return body if raw else json.loads(body)

    def ready(self) -> dict:
        return self._get("/readyz")

    def swap(self, checkpoint: str | None = None, operating_point: str | None = None) -> dict:
        """POST /v1/model: the server loads another model while its cameras run (up to a minute)."""
        return self._get("/v1/model", body={"checkpoint": checkpoint, "operating_point": operating_point},
                         timeout_s=120)

    def cameras(self) -> list[dict]:
        return self._get("/v1/cameras")["cameras"]

    def frame(self, name: str) -> bytes | None:
        return self._get(f"/v1/cameras/{urllib.parse.quote(name)}/frame.jpg", raw=True)

    def events(self, camera: str | None = None, since: float | None = None, until: float | None = None,
               limit: int = 50, offset: int = 0) -> dict:
        return self._get("/v1/events", {"camera": camera, "since": since, "until": until, "limit": limit,
                                        "offset": offset})

    def picture(self, event_id: str, kind: str = "evidence") -> bytes | None:
        return self._get(f"/v1/events/{urllib.parse.quote(event_id)}/{kind}.jpg", raw=True)

    def states(self, camera: str | None = None, since: float | None = None, until: float | None = None) -> list[dict]:
        return self._get("/v1/states", {"camera": camera, "since": since, "until": until})["states"]

    def people(self, camera: str | None = None, since: float | None = None, until: float | None = None) -> list[dict]:
        return self._get("/v1/people", {"camera": camera, "since": since, "until": until})["people"]


class BrokerFeed:
    """A subscriber to ``<prefix>/+/event`` and ``<prefix>/+/state``: the latest state of every
    camera of every machine, and the last ``KEEP`` events and states, in memory; and to the servers'
    presence (``<prefix>/_servers/+``, see ``sinks``): a camera that only servers gone away name is
    ``offline``."""

    def __init__(self, host: str, port: int = 1883, prefix: str = "maskrec"):
        import paho.mqtt.client as mqtt  # deferred: only a page following a broker needs paho
        self.host, self.port, self.prefix = host, port, prefix
        self._lock = threading.Lock()
        self._latest: dict[str, dict] = {}
        self._events: deque = deque(maxlen=KEEP)
        self._states: deque = deque(maxlen=KEEP)
        self._servers: dict[str, dict] = {}  # presence topic -> {"online", "cameras", "why"}
        self.connected, self.error = False, ""
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = lambda *_: self._said(f"cannot connect to the MQTT broker at {host}:{port}")
        self.client.on_disconnect = lambda *_: self._said("disconnected; reconnecting")
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)

    def start(self) -> "BrokerFeed":
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _said(self, why: str) -> None:
        with self._lock:
            self.connected, self.error = False, why

    def _on_connect(self, client, _u, _f, reason, _p) -> None:
        if reason.is_failure:
            self._said(f"the broker refused: {reason}")
            return
        client.subscribe([(f"{self.prefix}/+/event", 1), (f"{self.prefix}/+/state", 1),
                          (f"{self.prefix}/{PRESENCE}/+", 1)])
        with self._lock:
            self.connected, self.error = True, ""

    def _on_message(self, _c, _u, m) -> None:
        try:
            rec = json.loads(m.payload)
        except ValueError:
            return
        with self._lock:
            if m.topic.startswith(f"{self.prefix}/{PRESENCE}/"):
                self._servers[m.topic] = rec if isinstance(rec, dict) else {}
            elif m.topic.endswith("/event"):
                self._events.append(rec)
            else:
                self._states.append(rec)
                self._latest[rec.get("camera", m.topic.split("/")[-2])] = rec

    def status(self) -> dict:
        with self._lock:
            return {"connected": self.connected, "error": self.error}

    def cameras(self) -> list[dict]:
        """The latest state of each camera heard of, as ``ServeFeed.cameras`` names its fields."""
        with self._lock:
            latest, servers = dict(self._latest), list(self._servers.values())
        out = []
        for n, s in sorted(latest.items()):
            naming = [v for v in servers if n in (v.get("cameras") or ())]
            gone = bool(naming) and not any(v.get("online") for v in naming)  # no presence heard: a publisher of before
            why = next((v.get("why") for v in naming if v.get("why")), "")
            out.append({"name": n, "state": "offline" if gone else "live", "people": 0 if gone else s.get("people", 0),
                        "masked_share": None if gone else s.get("masked_share"), "model": s.get("model", ""),
                        "t": s.get("t"), **({"error": f"its server is gone ({why})"} if gone else {})})
        return out

    def events(self, camera: str | None = None, since: float | None = None, until: float | None = None,
               limit: int = 50, offset: int = 0) -> dict:
        with self._lock:
            rows = [e for e in self._events if (camera is None or e.get("camera") == camera)
                    and (since is None or e.get("t", 0) >= since) and (until is None or e.get("t", 0) < until)]
        rows.sort(key=lambda e: e.get("t", 0), reverse=True)
        return {"events": rows[offset:offset + limit], "total": len(rows), "offset": offset, "limit": limit}

    def states(self, camera: str | None = None, since: float | None = None, until: float | None = None) -> list[dict]:
        with self._lock:
            return [s for s in self._states if (camera is None or s.get("camera") == camera)
                    and (since is None or s.get("t", 0) >= since) and (until is None or s.get("t", 0) < until)]
