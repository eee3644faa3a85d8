"""Where events go besides ``events.jsonl``: webhooks and MQTT, each on a thread and a bounded queue of its own.

    sinks = sinks_for(cfg)                    # one WebhookSink per [[webhooks]], an MqttSink for [mqtt]
    for s in sinks: s.start()
    s.send_event(record); s.send_state(state) # return at once: queued, or dropped and counted when full
    s.status()                                # {"kind", "target", "sent", "failed", "dropped", "last_error", ...}
    for s in sinks: s.stop()

**Webhooks**: each event is POSTed as its JSON record (``Content-Type: application/json``) with a
``TIMEOUT_S`` socket timeout; a refusal, an error status or a timeout is retried ``RETRIES`` times
after ``BACKOFF_S`` x 1, 2, 4, ... seconds, then counted as failed. A dead or hanging endpoint holds
only its own thread: its queue fills and further events for it are dropped (counted), while the
camera, the writer and the other sinks go on. States are not sent to webhooks (an event is news; a
state every few seconds is not).

**MQTT** (paho-mqtt 2.x): events on ``<prefix>/<camera>/event`` (QoS 1), each camera's state on
``<prefix>/<camera>/state`` (QoS 1, retained: a subscriber arriving later gets the latest at once).
paho's own network thread connects in the background and reconnects with back-off (1 to 30 s), so
an unreachable broker never stops start-up; ``status()`` says it is not connected and why, and
messages wait in paho's queue (at most ``MQTT_QUEUE``; more are dropped and counted) until it is
back. Several ``serve`` processes may publish to one broker: each has its own client id.

**Presence**: a server says which cameras it runs on ``<prefix>/_servers/<client id>`` (retained):
``{"online": true, "cameras": [...]}`` on every connection, ``{"online": false, ...}`` when it stops,
and the same as its **last will**, which the broker publishes for it when its connection dies
without a goodbye (killed, unplugged: within 1.5 x the 30 s keepalive). A subscriber (the Cameras
page's ``BrokerFeed``) thereby tells a camera whose server went away from one with nobody in view.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

from maskrec.cameras.config import CamerasConfig, Mqtt

log = logging.getLogger("maskrec.cameras")

QUEUE = 100       # records waiting for one sink; more are dropped and counted
PRESENCE = "_servers"  # <prefix>/_servers/<client id>: which cameras a server runs, and whether it is there
TIMEOUT_S = 5.0   # a webhook's connect/read timeout: a hanging endpoint costs its own thread this long a try
RETRIES = 3       # a webhook's tries after the first
BACKOFF_S = 0.5   # ... after 0.5, 1, 2 s
MQTT_QUEUE = 1000  # messages paho keeps while the broker is away


def shown_url(url: str) -> str:
    """``url`` without credentials (``user:pw@``) or a query (tokens often ride there): for logs and APIs."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


class Sink:
    """A bounded queue drained by one daemon thread calling ``deliver(kind, record)``."""
    kind = "sink"

    def __init__(self, target: str, queue_size: int = QUEUE):
        self.target = target
        self._q: queue.Queue = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.sent = self.failed = self.dropped = 0
        self.last_error = ""
        self._thread: threading.Thread | None = None

    def send_event(self, record: dict) -> None:
        self._offer("event", record)

    def send_state(self, record: dict) -> None:
        pass

    def _offer(self, kind: str, record: dict) -> None:
        try:
            self._q.put_nowait((kind, record))
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning("%s %s: its queue is full (%s); %s dropped", self.kind, self.target,
                        self.last_error or "slow", record.get("id", "a state"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"maskrec-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._q.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            item = self._q.get()
            if item is None:
                return
            try:
                self.deliver(*item)
            except Exception as e:  # a bug in delivery must not end the thread
                log.exception("%s %s failed", self.kind, self.target)
                self._failed(f"{type(e).__name__}: {e}")

    def deliver(self, kind: str, record: dict) -> None:
        raise NotImplementedError

    def _sent(self) -> None:
        with self._lock:
            self.sent += 1

    def _failed(self, why: str) -> None:
        with self._lock:
            self.failed += 1
            self.last_error = why

    def status(self) -> dict:
        with self._lock:
            return {"kind": self.kind, "target": self.target, "sent": self.sent, "failed": self.failed,
                    "dropped": self.dropped, "queued": self._q.qsize(), "last_error": self.last_error}


class WebhookSink(Sink):
    kind = "webhook"

    def __init__(self, url: str, queue_size: int = QUEUE, timeout_s: float = TIMEOUT_S, retries: int = RETRIES,
                 backoff_s: float = BACKOFF_S):
        super().__init__(shown_url(url), queue_size)
        self.url, self.timeout_s, self.retries, self.backoff_s = url, timeout_s, retries, backoff_s

    def deliver(self, kind: str, record: dict) -> None:
        body = json.dumps(record).encode()
        why = ""
        for attempt in range(self.retries + 1):
            if attempt and self._stop.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
            req = urllib.request.Request(self.url, body, {"Content-Type": "application/json",
                                                          "User-Agent": "maskrec-serve"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    r.read()
                self._sent()
                return
            except urllib.error.HTTPError as e:
                why = f"HTTP {e.code} {e.reason}"
            except (urllib.error.URLError, OSError) as e:  # refused, unreachable, timed out
                reason = getattr(e, "reason", e)
                why = "timed out" if isinstance(reason, (TimeoutError, socket.timeout)) else str(reason)
        self._failed(why or "stopped")
        log.warning("webhook %s: event %s not delivered after %d tries: %s", self.target, record.get("id"),
                    self.retries + 1, why or "stopped")


class MqttSink(Sink):
    kind = "mqtt"

    def __init__(self, cfg: Mqtt, queue_size: int = QUEUE, client_id: str | None = None, cameras=()):
        import paho.mqtt.client as mqtt  # deferred: only a camera file with [mqtt] needs paho
        super().__init__(f"{cfg.host}:{cfg.port}", queue_size)
        self.cfg = cfg
        self.connected = False
        cid = client_id or f"maskrec-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        self.cameras = tuple(cameras)  # what the presence messages name (none: no presence)
        self.presence_topic = f"{cfg.prefix}/{PRESENCE}/{cid}"
        self._own_mids: set[int] = set()  # presence messages: not events or states, not counted as sent
        self._stopping = False
        if self.cameras:
            self.client.will_set(self.presence_topic, self._presence(False, "its connection to the broker died"),
                                 qos=1, retain=True)
        self.client.max_queued_messages_set(MQTT_QUEUE)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_publish = self._on_publish  # the broker's PUBACK: delivered

    def topic(self, camera: str, what: str) -> str:
        return f"{self.cfg.prefix}/{camera}/{what}"

    def _presence(self, online: bool, why: str = "") -> str:
        return json.dumps({"online": online, "cameras": list(self.cameras), **({"why": why} if why else {})})

    def _say_presence(self, online: bool, why: str = ""):
        # Never under self._lock: paho calls on_publish holding its own lock, which publish() takes.
        # On paho's thread (on_connect) no PUBACK is handled before the mid is noted; from stop(),
        # nothing is counted any more (_stopping).
        info = self.client.publish(self.presence_topic, self._presence(online, why), qos=1, retain=True)
        with self._lock:
            self._own_mids.add(info.mid)
        return info

    def _on_publish(self, _client, _userdata, mid, _reason, _props) -> None:
        with self._lock:
            own = mid in self._own_mids or self._stopping
            self._own_mids.discard(mid)
        if not own:
            self._sent()

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=30)
        self.client.loop_start()  # paho's thread: connects, reconnects with back-off, sends
        super().start()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        with self._lock:
            self._stopping = True
        if self.cameras and self.connected:  # a goodbye (the broker sends no will on a clean disconnect)
            try:
                self._say_presence(False, "stopped").wait_for_publish(min(timeout, 2.0))
            except (RuntimeError, ValueError):  # the connection went meanwhile: the will says it
                pass
        with self._lock:
            self.connected = False  # our own disconnect: not worth a warning
        self.client.disconnect()
        self.client.loop_stop()

    def send_state(self, record: dict) -> None:
        self._offer("state", record)

    def deliver(self, kind: str, record: dict) -> None:
        import paho.mqtt.client as mqtt
        info = self.client.publish(self.topic(record["camera"], kind), json.dumps(record), qos=1,
                                   retain=kind == "state")
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # sent, or held (QoS 1) until connected
            pass  # counted as sent when the broker acknowledges it (_on_publish)
        elif info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            with self._lock:
                self.dropped += 1
        else:
            self._failed(f"publish: {mqtt.error_string(info.rc)}")

    def _on_connect(self, _client, _userdata, _flags, reason, _props) -> None:
        ok = not reason.is_failure
        with self._lock:
            self.connected = ok
            if not ok:
                self.last_error = f"the broker refused: {reason}"
        (log.info if ok else log.warning)("mqtt %s: %s", self.target, "connected" if ok else self.last_error)
        if ok and self.cameras:
            self._say_presence(True)

    def _on_disconnect(self, _client, _userdata, _flags, reason, _props) -> None:
        with self._lock:
            was, self.connected = self.connected, False
            if was:
                self.last_error = f"disconnected: {reason}"
        if was:
            log.warning("mqtt %s: disconnected (%s); reconnecting", self.target, reason)

    def _on_connect_fail(self, _client, _userdata) -> None:
        with self._lock:
            first = not self.last_error.startswith("cannot connect")
            self.last_error = f"cannot connect to the MQTT broker at {self.target}; retrying every 1-30 s"
        if first:
            log.warning("mqtt: %s", self.last_error)

    def status(self) -> dict:
        s = super().status()
        with self._lock:
            s["connected"] = self.connected
        return s


def sinks_for(cfg: CamerasConfig) -> list[Sink]:
    """The sinks ``cfg`` names: one per ``[[webhooks]]``, one for ``[mqtt]``."""
    out: list[Sink] = [WebhookSink(w.url) for w in cfg.webhooks]
    if cfg.mqtt is not None:
        out.append(MqttSink(cfg.mqtt, cameras=[c.name for c in cfg.cameras]))
    return out
