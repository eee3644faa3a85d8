"""The camera file (TOML; ``serve --cameras FILE``). Credentials in a source URL are never shown:
``Camera.shown_source`` is what logs, pages and APIs print (``scrub`` masks them in any other text,
such as FFmpeg's error messages, which quote the URL).

    cfg = load("cameras.toml")               # CamerasConfig; ValueError naming file, camera and key

A relative file source is relative to the camera file's folder. Unknown keys are mistakes (a
misspelt ``detect_evry`` would otherwise be ignored without a word).

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

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from maskrec.faces import DETECTORS


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

    @property
    def shown_source(self) -> str:
        """The source as logs, pages and APIs show it: credentials replaced (rtsp://***@host/path)."""
        return shown(self.source)

    def __repr__(self) -> str:  # a dataclass repr would print the source whole (a log of the config, a traceback)
        return f"Camera(name={self.name!r}, source={self.shown_source!r}, detector={self.detector!r}, " \
               f"detect_every={self.detect_every!r}, max_fps={self.max_fps!r}, zones={len(self.zones)}, " \
               f"rules={len(self.rules)})"


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


NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SCHEMES = ("rtsp", "rtsps", "http", "https")
SECRET_QUERY = re.compile(r"(pass|pwd|secret|token|key|auth|user|login)", re.I)  # query keys whose values are hidden
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")  # scheme://user:pw@ in any text
_SECRET_PARAM = re.compile(r"(?i)([?&][^=&\s'\"]*(?:pass|pwd|secret|token|key|auth|user|login)[^=&\s'\"]*=)[^&\s'\"]+")


def shown(source: str) -> str:
    """``source`` fit to show: the user and password of a URL as ``***`` (rtsp://***@host/path), the
    values of query keys that look like credentials (``?password=``, ``&token=``) too."""
    if "://" not in source:
        return source
    try:
        u = urlsplit(source)
    except ValueError:
        return _CREDENTIALS.sub(r"\1***@", source)
    netloc = u.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{k}=***" if SECRET_QUERY.search(k) else (f"{k}={v}" if v or "=" in part else k)
                     for part in u.query.split("&") if part
                     for k, _, v in [part.partition("=")])
    return urlunsplit((u.scheme, netloc, u.path, query, u.fragment))


def scrub(text: str, *sources: str) -> str:
    """``text`` (an error message, a log line) with each of ``sources`` shown as ``shown`` shows it,
    and any other ``scheme://user:pw@`` left in it masked too (FFmpeg quotes the URL it failed on)."""
    for s in sources:
        if s and s != shown(s):
            text = text.replace(s, shown(s))
    return _SECRET_PARAM.sub(r"\1***", _CREDENTIALS.sub(r"\1***@", text))


def source_kind(source: str) -> str:
    """"rtsp", "http" (MJPEG or any stream FFmpeg reads over HTTP), "device" (/dev/video*) or "file"."""
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if scheme in ("http", "https"):
        return "http"
    if source.startswith("/dev/"):
        return "device"
    return "file"


def load(path: str | Path) -> CamerasConfig:
    """Read and check a camera file; any mistake is a ValueError naming the file, the camera and
    the key (``cameras.toml: camera 'door': detect_every: must be a whole number >= 1, not 0``)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such camera file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    return _Reader(path).config(doc)


class _Reader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, key: str, problem: str):
        raise ValueError(f"{self.path}: {where + ': ' if where else ''}{key}: {problem}")

    def keys(self, where: str, table, allowed: tuple[str, ...], required: tuple[str, ...] = (), name: str = ""):
        if not isinstance(table, dict):
            self.fail(where, name or "table", f"must be a table, not {_what(table)}")
        for k in table:
            if k not in allowed:
                self.fail(where, k, f"unknown key (allowed: {', '.join(allowed)})")
        for k in required:
            if k not in table:
                self.fail(where, k, "missing (required)")

    def text(self, where: str, key: str, v) -> str:
        if not isinstance(v, str) or not v.strip():
            self.fail(where, key, f"must be a non-empty string, not {_what(v)}")
        return v

    def number(self, where: str, key: str, v, low: float, low_ok: bool = True, whole: bool = False,
               high: float | None = None) -> float:
        kind = "a whole number" if whole else "a number"
        bound = f"{'>=' if low_ok else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        ok_type = isinstance(v, int) if whole else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type or not math.isfinite(v) or (v < low if low_ok else v <= low) \
                or (high is not None and v > high):
            self.fail(where, key, f"must be {kind} {bound}, not {_what(v)}")
        return int(v) if whole else float(v)

    def config(self, doc: dict) -> CamerasConfig:
        self.keys("", doc, ("cameras", "mqtt", "webhooks", "events"), name="file")
        cams = doc.get("cameras")
        if not isinstance(cams, list) or not cams:
            self.fail("", "cameras", "no [[cameras]] table: the file must list at least one camera")
        cameras, names = [], set()
        for i, c in enumerate(cams):
            cam = self.camera(i, c)
            if cam.name in names:
                self.fail(f"camera {cam.name!r}", "name", "used by another camera too (names must differ)")
            names.add(cam.name)
            cameras.append(cam)
        mqtt = None
        if "mqtt" in doc:
            m = doc["mqtt"]
            self.keys("[mqtt]", m, ("host", "port", "prefix"), name="mqtt")
            mqtt = Mqtt(self.text("[mqtt]", "host", m.get("host", Mqtt.host)),
                        int(self.number("[mqtt]", "port", m.get("port", Mqtt.port), 1, whole=True, high=65535)),
                        self.text("[mqtt]", "prefix", m.get("prefix", Mqtt.prefix)).strip("/"))
        hooks = doc.get("webhooks", [])
        if not isinstance(hooks, list):
            self.fail("", "webhooks", f"must be [[webhooks]] tables, not {_what(hooks)}")
        webhooks = []
        for i, h in enumerate(hooks):
            where = f"webhooks[{i}]"
            self.keys(where, h, ("url",), ("url",), name="webhooks")
            url = self.text(where, "url", h["url"])
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
                self.fail(where, "url", f"must be an http:// or https:// URL, not {shown(url)!r}")
            webhooks.append(Webhook(url))
        ev = doc.get("events", {})
        self.keys("[events]", ev, ("dir", "blur_others"), name="events")
        blur = ev.get("blur_others", CamerasConfig.blur_others)
        if not isinstance(blur, bool):
            self.fail("[events]", "blur_others", f"must be true or false, not {_what(blur)}")
        return CamerasConfig(tuple(cameras), mqtt, tuple(webhooks), self.text("[events]", "dir", ev.get("dir", "events")),
                             blur, str(self.path))

    def camera(self, i: int, c) -> Camera:
        where = f"camera {c['name']!r}" if isinstance(c, dict) and isinstance(c.get("name"), str) else f"cameras[{i}]"
        self.keys(where, c, ("name", "source", "detector", "detect_every", "max_fps", "zones", "rules"),
                  ("name", "source"), name="camera")
        name = c["name"]
        if not isinstance(name, str) or not NAME.fullmatch(name):
            self.fail(where, "name", f"{name!r} is not a camera name: 1-64 letters, digits, '_' or '-'")
        source = self.text(where, "source", c["source"]).strip()
        if "://" in source and source.split("://", 1)[0].lower() not in SCHEMES:
            self.fail(where, "source", f"{shown(source)!r}: the scheme must be one of {', '.join(SCHEMES)} "
                                       "(or give a video file's path, or a device such as /dev/video0)")
        if source_kind(source) == "file" and not Path(source).is_absolute():
            source = str(self.path.parent / source)  # a file beside the camera file
        detector = c.get("detector")
        if detector is not None and detector not in DETECTORS:
            self.fail(where, "detector", f"unknown detector {detector!r}; choose one of: {', '.join(DETECTORS)}")
        every = c.get("detect_every")
        every = None if every is None else int(self.number(where, "detect_every", every, 1, whole=True))
        max_fps = c.get("max_fps")
        max_fps = None if max_fps is None else self.number(where, "max_fps", max_fps, 0, low_ok=False)
        zones = tuple(self.zone(where, j, z) for j, z in enumerate(self.tables(where, "zones", c.get("zones", []))))
        seen = set()
        for z in zones:
            if z.name in seen:
                self.fail(where, "zones", f"two zones are named {z.name!r}")
            seen.add(z.name)
        rules = tuple(self.rule(where, j, r, seen) for j, r in enumerate(self.tables(where, "rules", c.get("rules", []))))
        if len({r.name for r in rules}) < len(rules):
            self.fail(where, "rules", "two rules have the same name")
        return Camera(name, source, detector, every, max_fps, zones, rules)

    def tables(self, where: str, key: str, v) -> list:
        if not isinstance(v, list):
            self.fail(where, key, f"must be [[cameras.{key}]] tables, not {_what(v)}")
        return v

    def zone(self, where: str, j: int, z) -> Zone:
        at = f"{where}: zones[{j}]"
        self.keys(at, z, ("name", "points"), ("name", "points"), name="zone")
        name = self.text(at, "name", z["name"])
        pts = z["points"]
        if not isinstance(pts, list) or len(pts) < 3:
            self.fail(f"{where}: zone {name!r}", "points", f"a polygon needs at least 3 [x, y] points, not {_what(pts)}")
        out = []
        for p in pts:
            if not (isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                 and math.isfinite(v) for v in p)):
                self.fail(f"{where}: zone {name!r}", "points", f"each point must be [x, y] in pixels, not {_what(p)}")
            out.append((float(p[0]), float(p[1])))
        return Zone(name, tuple(out))

    def rule(self, where: str, j: int, r, zones: set[str]) -> Rule:
        at = f"{where}: rules[{j}]"
        self.keys(at, r, ("name", "bare_for_s", "zone", "cooldown_s"), ("name", "bare_for_s"), name="rule")
        name = self.text(at, "name", r["name"])
        at = f"{where}: rule {name!r}"
        zone = r.get("zone")
        if zone is not None and zone not in zones:
            self.fail(at, "zone", f"no zone named {zone!r} on this camera"
                                  f"{' (it has: ' + ', '.join(sorted(zones)) + ')' if zones else ''}")
        return Rule(name, self.number(at, "bare_for_s", r["bare_for_s"], 0),
                    zone, self.number(at, "cooldown_s", r.get("cooldown_s", Rule.cooldown_s), 0))


def _what(v) -> str:
    """A value as an error message names it: its TOML type and, when short, the value."""
    kind = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)
    text = repr(v)
    return f"{kind} ({text})" if len(text) <= 40 and not isinstance(v, dict) else kind
