"""The camera file (TOML; ``serve --cameras FILE``). Credentials in a source URL are never shown:
``Camera.shown_source`` is what logs, pages and APIs print.

    [mqtt]                                   # optional
    host = "127.0.0.1"
    port = 1883
    prefix = "maskrec"                       # topics <prefix>/<camera>/event and <prefix>/<camera>/state

    [[webhooks]]                             # optional, any number
    url = "http://127.0.0.1:9000/hook"

    [events]                                 # optional
    dir = "events"                           # events.jsonl and evidence/ (relative: to MASKREC_HOME)
    blur_others = true                       # blur the other faces in an evidence JPEG

    [[cameras]]
    name = "door"                            # [A-Za-z0-9_-]{1,64}
    source = "rtsp://user:pw@10.0.0.5/stream"  # rtsp://, http(s):// MJPEG, a file (looped), /dev/videoN
    detector = "retinaface"                  # optional: faces.LIVE_DEFAULT
    detect_every = 2                         # optional: video.follow.DETECT_EVERY
    max_fps = 15                             # optional: frames processed per second at most

    [[cameras.zones]]                        # optional: polygons in frame pixels
    name = "entry"
    points = [[0, 0], [640, 0], [640, 480], [0, 480]]

    [[cameras.rules]]                        # optional: what raises an event
    name = "bare-at-door"
    bare_for_s = 3.0                         # a person voted bare this long ...
    zone = "entry"                           # ... inside this zone (omitted: anywhere)
    cooldown_s = 60.0                        # at most one event per person per rule in this time
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Zone:
    name: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Rule:
    name: str
    bare_for_s: float
    zone: str | None = None
    cooldown_s: float = 60.0


@dataclass(frozen=True)
class Camera:
    name: str
    source: str
    detector: str | None = None
    detect_every: int | None = None
    max_fps: float | None = None
    zones: tuple[Zone, ...] = ()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Mqtt:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "maskrec"


@dataclass(frozen=True)
class Webhook:
    url: str


@dataclass(frozen=True)
class CamerasConfig:
    cameras: tuple[Camera, ...]
    mqtt: Mqtt | None = None
    webhooks: tuple[Webhook, ...] = ()
    events_dir: str = "events"
    blur_others: bool = True
    path: str = ""                           # the file it was read from
    extra: dict = field(default_factory=dict)
