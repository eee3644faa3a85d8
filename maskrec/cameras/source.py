"""A camera's source decoded on its own thread (PyAV, i.e. FFmpeg), the newest frame kept and no other.

    src = Source("rtsp://user:pw@10.0.0.5/stream", notify=cond_notify)
    src.start()
    got = src.take(after=seq)            # Taken(seq, t, rgb) newer than seq, or None
    src.state, src.error, src.reconnects # "connecting" / "live" / "reconnecting" / "stopped" / "failed: <why>"
    src.stop()

**Kinds** (``config.source_kind``): ``rtsp://`` over TCP (no UDP ports to open through a firewall,
no lost packets smearing the picture), with socket and open timeouts so that a camera that stops
answering is noticed in ``TIMEOUT_S``; ``http(s)://`` any stream FFmpeg reads over HTTP (MJPEG
``multipart/x-mixed-replace`` included); a video file, played at its own frame rate and looped (a
camera for demos and tests); ``/dev/videoN`` through video4linux2.

**Newest frame only.** The decoder thread decodes every frame (H.264 needs each to decode the
next) but only keeps a reference to the newest one, with the wall-clock time it came out of the
decoder (its capture time here: the network and the camera's own encoder delay before that are not
seen). Conversion to RGB (and scaling down to ``PROCESS_SIDE``) happens in ``take``, on the
processing thread, for the frames actually processed: a frame overtaken by the next is dropped
without costing a conversion. So nothing queues: however slow the processing, the lag is one
frame's processing plus the wait for a worker.

**Reconnecting.** Any end of a live stream (an error, a timeout, the server closing) is a drop: the
thread waits ``BACKOFF_S`` (0.5 s doubling to 2 s at most; reset once a frame comes through) and
opens it again, for ever, until ``stop``. With retries at most 2 s apart a stream that comes back
is read again within ~2 s plus its opening (probing ~0.5 s and the wait for a keyframe). Only what
cannot get better by retrying fails for good (``failed: ...``): a missing file, one that is no video.

Error messages never hold the URL's credentials: FFmpeg quotes the URL it failed on, so every
message goes through ``config.scrub``.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from maskrec.cameras.config import scrub, shown, source_kind
from maskrec.video.codec import PROCESS_SIDE, process_size

log = logging.getLogger("maskrec.cameras")

BACKOFF_S = (0.5, 2.0)  # first wait after a drop, and the longest (doubling between)
TIMEOUT_S = 5.0         # opening a stream, and the longest silence of an open one
PROBE = {"analyzeduration": "500000", "probesize": "500000"}  # 0.5 s to learn the stream, not FFmpeg's 5 s


class Taken(NamedTuple):
    seq: int            # frames decoded before it, this source's life long (grows by one per decoded frame)
    t: float            # when it left the decoder: epoch seconds
    rgb: np.ndarray     # (H, W, 3) uint8, at most PROCESS_SIDE a side


class Fatal(Exception):
    """A source that retrying will not mend (a missing file, one that is no video)."""


def _av():
    import av  # deferred: importing maskrec.cameras should not load FFmpeg
    return av


class Source:
    """One source decoded on a daemon thread; ``notify()`` is called after each new frame (the
    processing side's wake-up: it must return at once)."""

    def __init__(self, url: str, notify: Callable[[], None] | None = None, max_side: int = PROCESS_SIDE,
                 backoff: tuple[float, float] = BACKOFF_S, timeout_s: float = TIMEOUT_S):
        self.url, self.kind, self.shown = url, source_kind(url), shown(url)
        self.notify = notify or (lambda: None)
        self.max_side, self.backoff, self.timeout_s = max_side, backoff, timeout_s
        self.state = "connecting"
        self.error = ""           # why the last try failed or the stream dropped ("" once live)
        self.reconnects = 0       # times it was opened again after having been live
        self.decoded = 0          # frames decoded (seq of the newest)
        self.connected_at = 0.0   # epoch seconds of the last (re)connection
        self._newest = None       # (seq, t, av.VideoFrame)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._container = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera-decode", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Ask the decoder thread to end (returns at once; ``stop`` also waits for it)."""
        self._stop.set()

    def newest(self) -> tuple[int, float] | None:
        """(seq, capture time) of the newest decoded frame, None before the first; no pixels converted."""
        with self._lock:
            newest = self._newest
        return None if newest is None else (newest[0], newest[1])

    def stop(self, timeout: float = TIMEOUT_S + 1) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    def take(self, after: int = 0) -> Taken | None:
        """The newest frame if it is newer than ``after`` (a seq), as RGB; None otherwise."""
        with self._lock:
            newest = self._newest
        if newest is None or newest[0] <= after:
            return None
        seq, t, frame = newest
        w, h = process_size(frame.width, frame.height, self.max_side)
        return Taken(seq, t, frame.to_ndarray(format="rgb24", width=w, height=h))

    # ------------------------------------------------------------------ the decoder thread

    def _say(self, state: str, error: str = "") -> None:
        if (state, error) != (self.state, self.error):
            log.info("%s: %s%s", self.shown, state, f" ({error})" if error else "")
        self.state, self.error = state, error

    def _run(self) -> None:
        wait, was_live = self.backoff[0], False
        while not self._stop.is_set():
            try:
                self._read(was_live)
                why = "the stream ended"
            except Fatal as e:
                self._say(f"failed: {e}", str(e))
                return
            except Exception as e:  # noqa: BLE001 - any failure of one source is said, then retried
                why = self._reason(e)
            if self._stop.is_set():
                break
            if self.kind == "file" and why == "the stream ended":
                continue  # a file camera loops
            if self.state == "live":
                was_live, wait = True, self.backoff[0]
            self._say("reconnecting" if was_live else "connecting", why)
            if self._stop.wait(wait):
                break
            wait = min(wait * 2, self.backoff[1])
        self.state = "stopped"

    def _reason(self, e: Exception) -> str:
        text = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return scrub(f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text, self.url)

    def _open(self):
        av = _av()
        options, fmt = dict(PROBE), None
        if self.kind == "rtsp":
            options |= {"rtsp_transport": "tcp", "timeout": str(int(self.timeout_s * 1e6))}
        elif self.kind == "http":
            options |= {"rw_timeout": str(int(self.timeout_s * 1e6))}
        elif self.kind == "device":
            fmt = "v4l2"
        else:
            p = Path(self.url)
            if not p.is_file():
                raise Fatal(f"no such video file: {p}")
        try:
            container = av.open(self.url, format=fmt, options=options, timeout=(self.timeout_s, self.timeout_s),
                                metadata_errors="ignore")
        except av.FFmpegError as e:
            if self.kind == "file":
                raise Fatal(f"{Path(self.url).name} is not a video FFmpeg can read ({self._reason(e)})") from None
            raise
        if not container.streams.video:
            container.close()
            raise (Fatal if self.kind == "file" else ValueError)("the source has no video stream")
        return container

    def _read(self, was_live: bool) -> None:
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_count = 1  # many cameras share the cores: a thread each, no frame-thread delay
            start, first_t = time.monotonic(), None
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                if self.kind == "file":  # a file plays at its own rate, as a camera would
                    t = float(frame.time or 0.0)
                    first_t = t if first_t is None else first_t
                    if self._stop.wait(max(0.0, start + (t - first_t) - time.monotonic())):
                        return
                now = time.time()
                with self._lock:
                    self.decoded += 1
                    self._newest = (self.decoded, now, frame)
                if self.state != "live":
                    if was_live:
                        self.reconnects += 1
                    self.connected_at = now
                    self._say("live")
                self.notify()
        finally:
            container.close()
