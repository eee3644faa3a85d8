"""Rules -> events: a person who stays bare (inside a zone) raises one event, written to disk and sent on.

    events = Events(cfg, Path("events"))          # cfg: config.CamerasConfig; builds the sinks it names
    events.start()
    hub.listeners.append(events.on_frame)         # every CameraFrame of every camera, on its own thread
    ...
    events.stop()

**The rule** (``config.Rule``): a confirmed track (``Seen.track`` > 0) whose *running* label is the
no-mask class (``tracker.classes[0]``; the sticky filter of ``live.vote``, so one odd frame neither
starts nor breaks a run) and, when the rule names a zone, whose face box's centre lies in the zone's
polygon, frame after frame for ``bare_for_s`` seconds of capture time, raises an event. A frame where
the track is labelled otherwise, or is outside the zone, ends its run; a track unseen for more than
``GAP_S`` starts a new run when it comes back. After an event the same track raises that rule again
only ``cooldown_s`` later (still bare all along): one event per person per rule per cooldown. A
camera whose tracker object changes (a reconnect, another model) starts afresh: its track ids restart.

**The record** (one JSON line of ``<dir>/events.jsonl``, the disk as database): ``id``, ``camera``,
``rule``, ``zone``, ``track``, ``bare_since`` (capture time the run began, epoch s), ``bare_for_s``,
``t`` (capture time of the frame that completed it), ``time`` (the same in ISO 8601 UTC),
``raised_at`` (wall clock when the rule fired), ``due`` (when it was due: ``bare_since +
bare_for_s``, or the cooldown's end for a person still bare), ``delay_s`` (``raised_at - due``: how
long after its N s the event was raised: frame spacing plus the camera's lag),
``p_mask`` (the track's vote), ``box``, ``model`` (``CameraFrame.model``), ``evidence`` and
``thumbnail`` (paths under the dir: the frame with the person boxed and, with ``blur_others``, every
other face blurred; the face crop the classifier saw).

**Threads.** ``on_frame`` runs on a camera's thread: it only compares numbers and, on an event,
puts the frame (a reference; decoders hand out a fresh array per frame) on a bounded queue; a full
queue drops the event and counts it (``dropped``), never blocks a camera. One writer thread encodes
the JPEGs, writes them and the record (atomically, then appended), and hands the record to the
outlets (sinks, the API's stream, a counter): each outlet must return at once (the sinks queue).
Every ``STATE_EVERY_S`` a camera's state (people now, masked, bare, masked share) goes the same
way to ``states.jsonl`` and the state outlets (MQTT's retained state, the page's trend), and each
person who left since (a track ended) to ``people.jsonl`` with their vote (the compliance report).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from maskrec.cameras.config import CamerasConfig, Rule
from maskrec.cameras.evidence import evidence_jpeg, thumbnail_jpeg
from maskrec.cameras.frame import CameraFrame
from maskrec.cameras.sinks import sinks_for
from maskrec.config import home

log = logging.getLogger("maskrec.cameras")

EVENTS = "events.jsonl"
STATES = "states.jsonl"
PEOPLE = "people.jsonl"
EVIDENCE = "evidence"
GAP_S = 2.0           # a track unseen longer than this starts a new bare run when it returns
STATE_EVERY_S = 5.0   # a camera's state is recorded (and published) this often
QUEUE = 64            # events and states waiting for the writer; more are dropped and counted
THUMB_SIDE = 112      # the thumbnail's longer side, px


def events_dir(cfg: CamerasConfig) -> Path:
    """The file's ``[events] dir``; a relative one is under MASKREC_HOME (default: the repo)."""
    d = Path(cfg.events_dir).expanduser()
    return d if d.is_absolute() else home() / d


def inside(point: tuple[float, float], polygon) -> bool:
    """Whether ``point`` lies in ``polygon`` ((x, y) vertices, in order): even-odd ray casting."""
    x, y = point
    hit = False
    n = len(polygon)
    for i in range(n):
        (x0, y0), (x1, y1) = polygon[i], polygon[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            hit = not hit
    return hit


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Raised(NamedTuple):
    """An event on its way to the writer (camera thread -> writer thread: a plain value)."""
    record: dict
    rgb: np.ndarray           # the frame; read only
    boxes: list               # every face's box in the frame (the others are blurred)
    crops: list               # every face's crop box (what the classifier saw)
    target: int               # which face is the person
    tag: str                  # drawn on the person's box


class _State(NamedTuple):
    record: dict
    file: str = STATES        # states.jsonl, or people.jsonl (a person's vote once they left)


class _Camera:
    """What the rules remember of one camera (touched by that camera's thread only)."""

    def __init__(self):
        self.tracker = None
        self.since: dict[tuple[int, str], float] = {}   # (track, rule) -> capture time its bare run began
        self.last_event: dict[tuple[int, str], float] = {}
        self.last_seen: dict[int, float] = {}
        self.state_t = 0.0
        self.recorded: set[int] = set()   # ended tracks already in people.jsonl


class Events:
    """The rules of every camera of ``cfg``, the writer thread, and the sinks (``sinks`` None: those
    ``cfg`` names). ``clock``: the wall clock of ``raised_at``."""

    def __init__(self, cfg: CamerasConfig, root: Path, queue_size: int = QUEUE, state_every_s: float = STATE_EVERY_S,
                 sinks: list | None = None, clock: Callable[[], float] = time.time):
        self.cfg, self.dir = cfg, Path(root)
        self.blur_others = cfg.blur_others
        self.state_every_s, self.clock = state_every_s, clock
        self._rules = {c.name: c.rules for c in cfg.cameras}
        self._zones = {c.name: {z.name: z.points for z in c.zones} for c in cfg.cameras}
        self._cams = {c.name: _Camera() for c in cfg.cameras}  # made up front: camera threads never add keys
        self._q: queue.Queue = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self.raised = self.written = self.dropped = self.failed = 0
        self.outlets: list[Callable[[dict], None]] = []        # each written event record
        self.state_outlets: list[Callable[[dict], None]] = []  # each camera state record
        self.sinks = sinks_for(cfg) if sinks is None else list(sinks)  # None: those the file names
        for s in self.sinks:
            self.outlets.append(s.send_event)
            self.state_outlets.append(s.send_state)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the camera threads' side

    def on_frame(self, frame: CameraFrame) -> None:
        """The listener: apply ``frame.camera``'s rules; returns at once and never raises."""
        try:
            self._apply(frame)
        except Exception:  # a listener must not take a camera down; the bug is logged
            log.exception("events: rules failed on a frame of %s", frame.camera)

    def _apply(self, f: CameraFrame) -> None:
        cam = self._cams.get(f.camera)
        if cam is None:
            return
        if cam.tracker is not f.tracker:  # a new tracker: ids restart, so what was known of them is void
            cam.tracker, cam.since, cam.last_event, cam.last_seen, cam.recorded = f.tracker, {}, {}, {}, set()
        bare, covered = f.tracker.classes[0], f.tracker.classes[1]
        rules = self._rules.get(f.camera, ())
        for i, s in enumerate(f.seen):
            if not s.track:
                continue
            if f.t - cam.last_seen.get(s.track, f.t) > GAP_S:
                for r in rules:
                    cam.since.pop((s.track, r.name), None)
            cam.last_seen[s.track] = f.t
            for r in rules:
                key = (s.track, r.name)
                if s.label != bare or not self._in_zone(f.camera, r, s.box):
                    cam.since.pop(key, None)
                    continue
                since = cam.since.setdefault(key, f.t)
                last = cam.last_event.get(key)
                if f.t - since >= r.bare_for_s and (last is None or f.t - last >= r.cooldown_s):
                    cam.last_event[key] = f.t
                    # when it was due: N s into the run, or, for a person still bare, the cooldown's end
                    due = max(since + r.bare_for_s, last + r.cooldown_s if last is not None else 0.0)
                    self._raise(f, i, r, since, due)
        if f.t - cam.state_t >= self.state_every_s:
            cam.state_t = f.t
            self._put(_State(state_record(f, bare, covered)))
            rows = f.tracker.tracks()
            for row in rows:  # people who left since the last state: their votes, for reports
                if not row.active and row.track not in cam.recorded:
                    cam.recorded.add(row.track)
                    self._put(_State(person_record(f, row), PEOPLE))
            self._forget(cam, f.t, {row.track for row in rows})

    def _in_zone(self, camera: str, rule: Rule, box) -> bool:
        if rule.zone is None:
            return True
        poly = self._zones[camera].get(rule.zone)
        return poly is not None and inside(centre(box), poly)

    def _forget(self, cam: _Camera, t: float, known: set[int]) -> None:
        """Drop tracks gone for longer than any cooldown, and the recorded ids the tracker itself has
        forgotten (``Tracker.forget_ended``): memory stays bounded on a busy door. Once a state tick,
        not every frame: it walks every person kept."""
        keep = max([GAP_S, *(r.cooldown_s for rs in self._rules.values() for r in rs)])
        gone = [k for k, v in cam.last_seen.items() if t - v > keep]
        for k in gone:
            del cam.last_seen[k]
            for d in (cam.since, cam.last_event):
                for key in [key for key in d if key[0] == k]:
                    del d[key]
        cam.recorded &= known

    def _raise(self, f: CameraFrame, i: int, rule: Rule, since: float, due: float) -> None:
        s = f.seen[i]
        now = self.clock()
        eid = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(f.t))}-{f.camera}-{uuid.uuid4().hex[:8]}"
        record = {"id": eid, "camera": f.camera, "rule": rule.name, "zone": rule.zone, "track": s.track,
                  "bare_since": round(since, 3), "bare_for_s": rule.bare_for_s, "t": round(f.t, 3), "time": iso(f.t),
                  "raised_at": round(now, 3), "due": round(due, 3), "delay_s": round(now - due, 3),
                  "p_mask": round(float(s.p_mask), 4), "box": [int(v) for v in s.box[:4]], "model": f.model,
                  "evidence": f"{EVIDENCE}/{eid}.jpg", "thumbnail": f"{EVIDENCE}/{eid}-face.jpg"}
        with self._lock:
            self.raised += 1
        self._put(_Raised(record, f.rgb, [g.box for g in f.result.faces], [g.crop for g in f.result.faces], i,
                          f"#{s.track} {s.label.replace('_', ' ')} {s.p_mask:.2f}"))

    def _put(self, job) -> None:
        try:
            self._q.put_nowait(job)
        except queue.Full:  # the writer is behind (a slow disk): drop, count, never block the camera
            with self._lock:
                self.dropped += 1
            log.warning("events: the writer's queue is full; %s dropped",
                        f"event {job.record['id']}" if isinstance(job, _Raised) else "a state record")

    # ------------------------------------------------------------------ the writer thread

    def start(self) -> "Events":
        (self.dir / EVIDENCE).mkdir(parents=True, exist_ok=True)
        for s in self.sinks:
            s.start()
        self._thread = threading.Thread(target=self._write_loop, name="maskrec-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the writer and the sinks (each waits at most ``timeout``)."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None
        for s in self.sinks:
            s.stop(timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event and state is written (tests, shutdown); False on timeout."""
        end = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)
        return not self._q.unfinished_tasks

    def _write_loop(self) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                if isinstance(job, _Raised):
                    self._write_event(job)
                    outlets, record = self.outlets, job.record
                else:
                    append_line(self.dir / job.file, job.record)
                    outlets, record = (self.state_outlets if job.file == STATES else ()), job.record
                for out in list(outlets):
                    try:
                        out(record)
                    except Exception:
                        log.exception("events: an outlet failed on %s", record.get("id", "a state"))
            except Exception:  # a full disk, an unwritable dir: said, counted; the next event is tried
                with self._lock:
                    self.failed += 1
                log.exception("events: could not write %s", getattr(job, "record", {}).get("id", "a record"))
            finally:
                self._q.task_done()

    def _write_event(self, job: _Raised) -> None:
        rec = job.record
        write_bytes(self.dir / rec["evidence"], evidence_jpeg(job.rgb, job.boxes, job.target, job.tag,
                                                              self.blur_others))
        write_bytes(self.dir / rec["thumbnail"], thumbnail_jpeg(job.rgb, job.crops[job.target], THUMB_SIDE))
        append_line(self.dir / EVENTS, rec)
        with self._lock:
            self.written += 1
        log.info("event %s: %s on %s, track %d bare %.1f s (raised %.2f s after)", rec["id"], rec["rule"],
                 rec["camera"], rec["track"], rec["bare_for_s"], rec["delay_s"])

    def counts(self) -> dict:
        with self._lock:
            return {"raised": self.raised, "written": self.written, "dropped": self.dropped, "failed": self.failed,
                    "queued": self._q.qsize()}

    def status(self) -> dict:
        """The counts and each sink's state (connected, sent, failed, dropped, last error): GET /v1/events/status."""
        return {"dir": str(self.dir), **self.counts(), "sinks": [s.status() for s in self.sinks]}


def state_record(f: CameraFrame, bare: str, covered: str) -> dict:
    """A camera's state at frame ``f``: people now (confirmed tracks in the frame), with and without a
    mask (running labels), masked share of the people (None when nobody is there; as /v1/cameras says it),
    and the frames the camera processed since it started (the report's frames and speed)."""
    people = [s for s in f.seen if s.track]
    masked = sum(s.label == covered for s in people)
    unmasked = sum(s.label == bare for s in people)
    share = round(masked / len(people), 4) if people else None
    return {"camera": f.camera, "t": round(f.t, 3), "time": iso(f.t), "people": len(people), "masked": masked,
            "bare": unmasked, "masked_share": share, "model": f.model, "frames": f.frames}


def person_record(f: CameraFrame, row) -> dict:
    """A person who left (a ``TrackRow`` no longer active): when, how long, the vote; the compliance
    report's track table."""
    return {"camera": f.camera, "track": row.track, "first": round(row.first_s, 3), "last": round(row.last_s, 3),
            "frames": row.frames, "label": row.label, "p_mask": round(row.p_mask, 4), "agree": round(row.agree, 3),
            "model": f.model}


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically: a reader (the API) never serves half a JPEG."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def append_line(path: Path, record: dict) -> None:
    """One JSON line, written whole in one call (O_APPEND: a reader never sees two lines interleaved)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
