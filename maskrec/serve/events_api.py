"""The events' routes (``serve --cameras FILE``), and swapping the model while serving.

    GET  /v1/events                   the record, newest first, paged: ?camera= &rule= &since= &until= &limit= &offset=
    GET  /v1/events/stream            server-sent events: each new event as it is written (``event: event``);
                                      with ``Last-Event-ID`` (a browser's EventSource sends it when it
                                      reconnects) first the events written after that one
    GET  /v1/events/status            counts (raised, written, dropped, failed) and each sink's state
    GET  /v1/events/{id}/evidence.jpg the frame with the person boxed;  .../thumbnail.jpg: the face
    GET  /v1/states                   the cameras' states over time (people, masked share): ?camera= &since= &until=
    GET  /v1/people                   people who left a camera's view, with their vote (the compliance report)
    POST /v1/model                    {"checkpoint": "runs/x/best.pt", "operating_point": "crops"}: swap the model

``attach_events(app, hub, cfg)`` builds the event engine of a camera file (``cameras.events.Events``),
makes it a listener of every camera, and feeds the stream and ``/metrics`` from it; the app's lifespan
starts it before the cameras and stops it after them. The disk is the database: ``/v1/events`` reads
``events.jsonl``, so what a restarted server says is what the one before wrote.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from maskrec.cameras.config import CamerasConfig
from maskrec.cameras.events import EVENTS, EVIDENCE, PEOPLE, STATES, Events, events_dir
from maskrec.cameras.hub import Hub
from maskrec.core import jsonl
from maskrec.serve.model import NotReady

router = APIRouter(tags=["events"])
NO_EVENTS = "no events: start the server with --cameras FILE"
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,120}")
KEEPALIVE_S = 15.0   # a comment line this often keeps proxies from closing an idle stream
STREAM_QUEUE = 100   # events waiting for one slow stream client; more are dropped for that client


class Broadcast:
    """The writer thread's records to every open stream (one asyncio queue each, filled from the
    writer's thread through its loop; a client too slow to read loses events, never the writer)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._subs: set = set()

    def publish(self, record: dict) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(_offer, q, record)
            except RuntimeError:  # the loop has closed (server shutting down)
                pass

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(STREAM_QUEUE)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not q}


def _offer(q: asyncio.Queue, record: dict) -> None:
    if not q.full():
        q.put_nowait(record)


def attach_events(app, hub: Hub, cfg: CamerasConfig, root: Path | None = None) -> Events:
    """The event engine of ``cfg`` (its dir: ``root``, else the file's ``[events] dir``), listening to ``hub``."""
    events = Events(cfg, root or events_dir(cfg))
    hub.add_listener(events.on_frame)
    app.state.events, app.state.broadcast = events, Broadcast()
    events.outlets.append(app.state.broadcast.publish)
    app.state.metrics.watch_events(events)
    return events


def _events(request: Request) -> Events:
    events = getattr(request.app.state, "events", None)
    if events is None:
        raise HTTPException(404, NO_EVENTS)
    return events


def _time(value: str | None, name: str) -> float | None:
    """Epoch seconds or ISO 8601 (``2026-12-07T18:00:00Z``) -> epoch seconds; 400 otherwise."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}={value!r} is neither epoch seconds nor ISO 8601 "
                                 "(e.g. 2026-12-07T18:00:00Z)") from None
    if t.tzinfo is None:
        raise HTTPException(400, f"{name}={value!r} has no time zone: add Z or +HH:MM")
    return t.timestamp()


def after(rows: list[dict], event_id: str) -> list[dict] | None:
    """The rows written after the one with ``event_id`` (file order), None when no row has it."""
    ids = [r.get("id") for r in rows]
    return rows[ids.index(event_id) + 1:] if event_id in ids else None


def select(rows: list[dict], camera: str | None = None, rule: str | None = None, since: float | None = None,
           until: float | None = None) -> list[dict]:
    """Rows of one camera / rule, capture time ``t`` in [since, until)."""
    return [r for r in rows if (camera is None or r.get("camera") == camera) and (rule is None or r.get("rule") == rule)
            and (since is None or r.get("t", 0) >= since) and (until is None or r.get("t", 0) < until)]


@router.get("/v1/events", summary="events, newest first, paged; filters: camera, rule, since, until")
def list_events(request: Request, camera: str | None = None, rule: str | None = None,
                since: str | None = Query(None, description="from this capture time on: epoch s or ISO 8601"),
                until: str | None = Query(None, description="before this capture time: epoch s or ISO 8601"),
                limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)):
    events = _events(request)
    lo, hi = _time(since, "since"), _time(until, "until")
    rows = select(jsonl.read(events.dir / EVENTS, lo, hi), camera, rule, lo, hi)
    rows.sort(key=lambda r: r.get("t", 0), reverse=True)
    page = rows[offset:offset + limit]
    return {"events": page, "total": len(rows), "offset": offset, "limit": limit,
            "next_offset": offset + limit if offset + limit < len(rows) else None}


@router.get("/v1/events/status", summary="events raised, written, dropped; each sink's state")
def events_status(request: Request):
    return _events(request).status()


@router.get("/v1/events/stream", summary="server-sent events: each event as it is written",
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, camera: str | None = None):
    events = _events(request)
    broadcast: Broadcast = request.app.state.broadcast
    q = broadcast.subscribe()  # before the file is read: an event written meanwhile is in one or both
    last = request.headers.get("last-event-id")
    missed = after(jsonl.read(events.dir / EVENTS), last) if last else []
    replayed = {r.get("id") for r in missed or ()}

    def as_sse(rec: dict) -> str:
        return f"id: {rec['id']}\nevent: event\ndata: {json.dumps(rec)}\n\n"

    async def lines():
        try:
            yield ": maskrec events\n\n"  # sent at once: the client knows it is subscribed
            if missed is None:
                yield f": {last} is not among the events kept: nothing to replay\n\n"
            for rec in missed or ():
                if camera is None or rec.get("camera") == camera:
                    yield as_sse(rec)
            while True:
                try:
                    rec = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if rec.get("id") in replayed:  # written while the file was read: sent already
                    continue
                if camera is None or rec.get("camera") == camera:
                    yield as_sse(rec)
        finally:
            broadcast.unsubscribe(q)

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _picture(request: Request, event_id: str, suffix: str) -> FileResponse:
    events = _events(request)
    if not EVENT_ID.fullmatch(event_id):  # an id is a file name: nothing that could climb out of evidence/
        raise HTTPException(404, f"no event {event_id!r}")
    path = events.dir / EVIDENCE / f"{event_id}{suffix}.jpg"
    if not path.is_file():
        raise HTTPException(404, f"no event {event_id!r}")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


@router.get("/v1/events/{event_id}/evidence.jpg", summary="the event's frame: the person boxed, others blurred by option",
            responses={200: {"content": {"image/jpeg": {}}}})
def evidence(request: Request, event_id: str):
    return _picture(request, event_id, "")


@router.get("/v1/events/{event_id}/thumbnail.jpg", summary="the event's face crop",
            responses={200: {"content": {"image/jpeg": {}}}})
def thumbnail(request: Request, event_id: str):
    return _picture(request, event_id, "-face")


@router.get("/v1/states", summary="the cameras' states over time: people, masked, bare, masked share")
def states(request: Request, camera: str | None = None, since: str | None = None, until: str | None = None,
           limit: int = Query(20000, ge=1, le=200000)):
    lo, hi = _time(since, "since"), _time(until, "until")  # the last hour of weeks of states: read from about then on
    rows = select(jsonl.read(_events(request).dir / STATES, lo, hi), camera, None, lo, hi)
    return {"states": rows[-limit:]}


@router.get("/v1/people", summary="people who left a camera's view, with their vote: ?camera= &since= &until=")
def people(request: Request, camera: str | None = None, since: str | None = None, until: str | None = None,
           limit: int = Query(20000, ge=1, le=200000)):
    lo, hi = _time(since, "since"), _time(until, "until")
    rows = jsonl.read(_events(request).dir / PEOPLE, lo, key="last")  # written as people leave: about in "last" order
    rows = [r for r in rows if (camera is None or r.get("camera") == camera) and (lo is None or r["last"] >= lo)
            and (hi is None or r["first"] < hi)]
    return {"people": rows[-limit:]}


class ModelChoice(BaseModel):
    checkpoint: str | None = None        # a .pt file on the server (None: keep the current one)
    operating_point: str | None = None   # one the checkpoint carries (None: its default, or the current one)


@router.post("/v1/model", summary="swap the model (checkpoint and/or operating point) while serving")
async def swap_model(request: Request, choice: ModelChoice):
    """Loads beside the current model, then replaces it: requests and cameras go on meanwhile, and
    every later frame and event uses the new one. 400 when it cannot be loaded (the old one stays)."""
    holder = request.app.state.holder
    hub = getattr(request.app.state, "hub", None)
    warm = tuple(sorted({hub.camera(n).detector for n in hub.names})) if hub is not None else ()
    if choice.checkpoint is None and choice.operating_point is None:
        raise HTTPException(400, "name a checkpoint, an operating point, or both")
    try:
        model = await run_in_threadpool(holder.swap, choice.checkpoint, choice.operating_point, warm)
    except NotReady as e:
        raise HTTPException(503, str(e)) from None
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    return {"ready": True} | model.describe()
