"""Recognise masks through a video file: follow each person, vote their label, count them per second.

    rec = Recognizer.load("checkpoints/net1.pt", detector=faces.LIVE_DEFAULT)
    res = process("door.mp4", rec, out="door-annotated.mp4")
    res.summary    # {"people": 12, "mask": 9, "no_mask": 2, "unsure": 1, "frames": 900, "seconds": 30.0, "fps": 41.5, ...}
    res.tracks     # one track.TrackRow per person: id, first/last time, frames, voted label, p_mask
    res.timeline   # (second, with mask, without) for every second of the video
    job = VideoJob(src, folder, rec).start()   # the same on a thread: progress(), stop(), result()

**Pipeline.** PyAV (FFmpeg) decodes on one thread, scaling each frame to at most
``PROCESS_SIDE`` px while converting to RGB (swscale, outside the GIL); the calling thread
detects, classifies a frame's faces in one batch (``Recognizer.recognize``), tracks
(``maskrec.track``) and draws; a third thread encodes. Bounded queues between them keep memory
flat and let decoding and encoding overlap the models. Times come from each frame's own
timestamp, so a variable frame rate is followed as recorded, and the output keeps them.

**Output.** H.264 in MP4 (``libx264``, yuv420p, ``+faststart`` so a browser starts playing
before the whole file is there) when the PyAV wheel has it, else VP9 in WebM; Chromium plays
both (``tests/test_video_browser.py`` checks playback in it).

**Bad input** raises ``VideoError`` (a ValueError) with a sentence for the user: not a video, an
image, audio only, a picture bigger than 8K, no frame that decodes. A file that breaks off or is
damaged part way is processed up to there, with a warning in ``summary["warnings"]``; no face at
all is an empty result.

The end of the module makes test clips with known truth: a slow pan and zoom (a "Ken Burns"
move) over an annotated photo, and ``clip_metrics`` scores a run against it (count error, ID
switches, voted vs per-frame label accuracy).
"""
from __future__ import annotations

import json
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np

from . import faces as F
from .atomic import atomic_write_text
from .jobs import BackgroundJob
from .track import UNSURE_LABEL, Seen, Timeline, Tracker, TrackRow, tracker_for

EXTENSIONS = ("mp4", "webm", "mov", "avi", "mkv", "m4v")
# Frames are decoded at most this long side: the live detector looks at 640 px, the classifier
# at 32-64 px crops, so more only costs decoding, drawing and encoding time.
PROCESS_SIDE = 1280
# Refused above 8K: one decoded frame would be over 100 MB, and decoding a few per second is
# no use. Scale such a file down first (ffmpeg -i IN -vf scale=1920:-2 OUT).
MAX_SIDE, MAX_PIXELS = 8192, 8192 * 4608
THUMB = 64  # px, the side of a track's thumbnail
# Output codecs by file suffix: (PyAV encoder, its options, MIME type for the browser).
# ultrafast/crf 26 and VP9 realtime/cpu-used 8: a 640x480 frame encodes in a few ms on 2 cores.
CODECS = {".mp4": ("libx264", {"preset": "ultrafast", "crf": "26"}, "video/mp4"),
          ".webm": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "34", "b": "0"},
                    "video/webm")}


class VideoError(ValueError):
    """A file that cannot be processed; the message is meant for the user."""


class VideoInfo(NamedTuple):
    width: int
    height: int
    fps: float          # average frame rate from the container (0 when it does not say)
    frames: int         # frame count from the container (0 when it does not say)
    duration_s: float   # 0 when the container does not say
    codec: str
    container: str


class Progress(NamedTuple):
    """Where a run is: passed to the progress callback per frame, and handed out by VideoJob."""
    frames: int          # frames processed
    total: int           # frames expected (container's count or duration x fps; 0 unknown)
    video_s: float       # timestamp of the last processed frame
    elapsed_s: float     # wall time so far

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.frames / self.total) if self.total else None

    @property
    def eta_s(self) -> float | None:
        if not self.total or not self.frames:
            return None
        return max(0.0, self.elapsed_s / self.frames * (self.total - self.frames))


@dataclass(frozen=True)
class VideoResult:
    tracks: tuple[TrackRow, ...]
    timeline: tuple[tuple[int, int, int], ...]   # (second, with mask, without), every second
    summary: dict
    thumbs: dict = field(default_factory=dict)   # track id -> data:image/jpeg URL
    out: str | None = None                       # the annotated video, if one was written

    def as_json(self) -> dict:
        return {"tracks": [{**t.as_json(), "thumb": self.thumbs.get(t.track, "")} for t in self.tracks],
                "timeline": [list(r) for r in self.timeline], "summary": self.summary, "out": self.out}

    @classmethod
    def from_json(cls, d: dict) -> "VideoResult":
        tracks = tuple(TrackRow(t["track"], t["first_s"], t["last_s"], t["frames"], t["label"], t["p_mask"],
                                t.get("agree", 1.0), False) for t in d["tracks"])
        return cls(tracks, tuple(tuple(r) for r in d["timeline"]), d["summary"],
                   {t["track"]: t["thumb"] for t in d["tracks"] if t.get("thumb")}, d.get("out"))

    def csv(self) -> str:
        """The track table as CSV (no thumbnails)."""
        lines = ["track,first_s,last_s,frames,label,p_mask,agree"]
        lines += [f"{t.track},{t.first_s:.2f},{t.last_s:.2f},{t.frames},{t.label},{t.p_mask:.4f},{t.agree:.3f}"
                  for t in self.tracks]
        return "\n".join(lines) + "\n"


def _av():
    import av  # deferred: PyAV comes with streamlit-webrtc; importing maskrec.video should not load FFmpeg
    return av


def output_suffix() -> str:
    """".mp4" where this PyAV can encode H.264, else ".webm" (VP9)."""
    return ".mp4" if CODECS[".mp4"][0] in _av().codecs_available else ".webm"


def mime(path: str | Path) -> str:
    return CODECS.get(Path(path).suffix.lower(), CODECS[".mp4"])[2]


def _open(src: str | Path):
    """Open a file for decoding: (container, its first video stream), or VideoError saying why not."""
    av = _av()
    p = Path(src)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise VideoError(f"{p.name}: cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise VideoError(f"{p.name} is empty (0 bytes)")
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise VideoError(f"{p.name} is not a video FFmpeg can read, or is damaged or cut short "
                         f"({_reason(e)})") from None
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in ("image2", "gif", "apng", "webp"):
        container.close()
        raise VideoError(f"{p.name} is a picture ({fmt.replace('_pipe', '')}), not a video: use the photo tab")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        container.close()
        raise VideoError(f"{p.name} has no video stream (it holds {', '.join(kinds)})")
    stream = container.streams.video[0]
    w, h = stream.codec_context.width, stream.codec_context.height
    if w <= 0 or h <= 0:
        container.close()
        raise VideoError(f"{p.name}: the video stream has no picture size (damaged header?)")
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        container.close()
        raise VideoError(f"{p.name} is {w}x{h}, over the {MAX_SIDE} px / {MAX_PIXELS / 1e6:.0f} M pixel limit "
                         f"(8K); scale it down first, e.g. ffmpeg -i IN -vf scale=1920:-2 OUT")
    return container, stream


def _reason(e: Exception) -> str:
    s = getattr(e, "strerror", None) or str(e)
    return s.split(":")[0].strip() if ":" in s else s


def probe(src: str | Path) -> VideoInfo:
    """What the container says about the video stream; VideoError when it is not a usable video."""
    container, stream = _open(src)
    with container:
        return _info(container, stream)


def _info(container, stream) -> VideoInfo:
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    dur = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
        container.duration / 1e6 if container.duration else 0.0)
    frames = int(stream.frames or 0) or (round(dur * fps) if dur and fps else 0)
    return VideoInfo(stream.codec_context.width, stream.codec_context.height, fps, frames, dur,
                     stream.codec_context.name, container.format.name)


def _size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """The processing size: at most ``max_side`` long, even sides (yuv420p needs them)."""
    k = min(1.0, max_side / max(w, h))
    return max(2, round(w * k) // 2 * 2), max(2, round(h * k) // 2 * 2)


class _Frame(NamedTuple):
    t: float
    rgb: np.ndarray


def _decode(container, stream, size: tuple[int, int], stop: threading.Event, out: queue.Queue,
            warnings: list[str]) -> None:
    """Decoder thread: puts _Frame items, then None. A packet that fails to decode is skipped; a
    demuxer that fails (the file breaks off) ends the stream. Both leave a warning."""
    av = _av()
    bad, t0, last, fps = 0, None, -1.0, float(stream.average_rate or 0) or 30.0
    stream.thread_type = "AUTO"  # FFmpeg's own frame/slice threads
    try:
        for packet in container.demux(stream):
            if stop.is_set():
                break
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError):
                bad += 1
                continue
            for fr in frames:
                t = fr.time
                if t is None:  # no timestamp (raw streams): assume the nominal rate
                    t = (last + 1 / fps) if t0 is not None else 0.0
                    t0 = 0.0 if t0 is None else t0
                else:
                    t0 = t if t0 is None else t0
                    t -= t0
                t = max(t, last + 1e-3)  # timestamps must grow (broken files repeat them)
                last = t
                rgb = fr.to_ndarray(format="rgb24", width=size[0], height=size[1])
                while not stop.is_set():
                    try:
                        out.put(_Frame(t, rgb), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
    except (av.FFmpegError, EOFError, ValueError) as e:
        warnings.append(f"the file breaks off or is damaged after {max(last, 0):.1f} s ({_reason(e)}); "
                        "processed up to there")
    except Exception as e:  # noqa: BLE001 - reported by the consumer, never a silent end
        warnings.append(f"decoding stopped: {type(e).__name__}: {e}")
    finally:
        if bad:
            warnings.append(f"{bad} damaged packet(s) skipped")
        out.put(None)


class _Writer:
    """Encoder thread: ``put(t, rgb)`` frames with their times (s), ``close()`` flushes."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        av = _av()
        suffix = path.suffix.lower()
        if suffix not in CODECS:
            raise VideoError(f"the output must end in {' or '.join(CODECS)}, not {suffix or 'nothing'}")
        codec, options, _ = CODECS[suffix]
        if codec not in av.codecs_available:
            raise VideoError(f"this PyAV build cannot encode {codec}; write {output_suffix()} instead")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._c = av.open(str(path), "w", options={"movflags": "+faststart"} if suffix == ".mp4" else {})
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        self._s = self._c.add_stream(codec, rate=rate, options=dict(options))
        self._s.width, self._s.height, self._s.pix_fmt = size[0], size[1], "yuv420p"
        # millisecond timestamps: the input's own times, a variable frame rate included
        self._s.codec_context.time_base = Fraction(1, 1000)
        self._q: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._pts = -1
        self._thread = threading.Thread(target=self._run, name="video-encode", daemon=True)
        self._thread.start()

    def put(self, t: float, rgb: np.ndarray) -> None:
        if self._error:
            raise self._error
        self._q.put((t, rgb))

    def _run(self) -> None:
        av = _av()
        try:
            while (item := self._q.get()) is not None:
                t, rgb = item
                fr = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                self._pts = max(round(t * 1000), self._pts + 1)
                fr.pts, fr.time_base = self._pts, Fraction(1, 1000)
                for packet in self._s.encode(fr):
                    self._c.mux(packet)
            for packet in self._s.encode():
                self._c.mux(packet)
        except BaseException as e:  # noqa: BLE001 - raised again on the caller's thread
            self._error = e
            while self._q.get() is not None:  # let the producer finish
                pass
        finally:
            self._c.close()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error:
            raise self._error


def process(src: str | Path, rec, out: str | Path | None = None, *, threshold: float | None = None,
            should_stop: Callable[[], bool] = lambda: False,
            progress: Callable[[Progress], None] | None = None,
            on_frame: Callable[[int, float, list[Seen]], None] | None = None,
            max_side: int = PROCESS_SIDE, tracker: Tracker | None = None) -> VideoResult:
    """Recognise and follow every face of ``src``; write the annotated video to ``out`` (.mp4 or
    .webm) if given. ``should_stop`` is asked before each frame: a stopped run returns what it
    has (status "stopped") and its output plays up to there. ``on_frame(index, t, seen)``: each
    frame's tracked faces (for evaluation). Raises VideoError for a file that is not a usable video.
    """
    from .data import data_url
    from .recognize import draw_tracked
    container, stream = _open(src)
    info = _info(container, stream)
    declared = int(stream.frames or 0)  # stated by the container (MP4/MOV), not estimated
    size = _size(info.width, info.height, max_side)
    thr = rec.threshold if threshold is None else float(threshold)
    classes = rec.predictor.classes
    tracker = tracker or tracker_for(rec, thr)
    timeline = Timeline(classes[1])
    warnings: list[str] = []
    frames_q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    decoder = threading.Thread(target=_decode, args=(container, stream, size, stop, frames_q, warnings),
                               name="video-decode", daemon=True)
    writer: _Writer | None = None
    thumbs: dict[int, tuple[int, np.ndarray]] = {}
    n, t, stopped, t_start = 0, 0.0, False, time.perf_counter()
    decoder.start()
    try:
        while (item := frames_q.get()) is not None:
            if should_stop():
                stopped = True
                break
            t, rgb = item
            res = rec.recognize(rgb, thr)
            seen = tracker.update(t, [f.box for f in res.faces], [f.p_mask for f in res.faces], thr)
            timeline.add(int(t), seen)
            for f, s in zip(res.faces, seen):
                if s.track:
                    _keep_thumb(thumbs, s.track, rgb, f.crop)
            if out is not None:
                if writer is None:
                    writer = _Writer(Path(out), size, info.fps)
                writer.put(t, draw_tracked(rgb, res, seen, classes[1]))
            if on_frame:
                on_frame(n, t, seen)
            n += 1
            if progress:
                progress(Progress(n, info.frames, t, time.perf_counter() - t_start))
    finally:
        stop.set()
        while decoder.is_alive():  # drain, so that the decoder is not stuck on a full queue
            try:
                frames_q.get(timeout=0.2)
            except queue.Empty:
                pass
        decoder.join()
        container.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - t_start
    if not stopped and declared and 0 < n < declared - 1:
        # a file cut short often ends without an error: FFmpeg just finds no more packets
        warnings.append(f"the file says it has {declared} frames but only {n} could be read "
                        f"(up to {t:.1f} s): it is cut short or damaged; processed up to there")
    if n == 0:
        if out is not None:
            Path(out).unlink(missing_ok=True)
        why = f" ({'; '.join(warnings)})" if warnings else ""
        raise VideoError(f"{Path(src).name}: no frame could be decoded: the video is empty, "
                         f"truncated or damaged{why}")
    rows = tracker.tracks()
    counts = tracker.counts()
    seconds = t + (1 / info.fps if info.fps else 0.0)
    per_sec = {k: (m, nm) for k, m, nm in timeline.rows()}
    summary = {"people": counts["people"], "mask": counts[classes[1]], "no_mask": counts[classes[0]],
               UNSURE_LABEL: counts[UNSURE_LABEL], "frames": n, "seconds": round(seconds, 3),
               "fps": round(n / max(elapsed, 1e-9), 1), "status": "stopped" if stopped else "done",
               "width": info.width, "height": info.height, "processed_at": list(size),
               "source_fps": round(info.fps, 3), "warnings": warnings}
    if not rows:
        summary["note"] = "no face was found"
    return VideoResult(tuple(rows), tuple((s, *per_sec.get(s, (0, 0))) for s in range(int(t) + 1)),
                       summary, {k: data_url(v[1]) for k, v in thumbs.items()},
                       str(out) if out is not None and writer is not None else None)


def _keep_thumb(thumbs: dict, track: int, rgb: np.ndarray, crop) -> None:
    """Keep each track's largest view of its face, squashed to THUMB px."""
    x0, y0, x1, y1 = crop
    area = (x1 - x0) * (y1 - y0)
    if area > thumbs.get(track, (0, None))[0]:
        import cv2
        thumbs[track] = (area, cv2.resize(rgb[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA))


# ------------------------------------------------------------------------------ result on disk

RESULT = "result.json"


def save(folder: Path, result: VideoResult) -> None:
    atomic_write_text(Path(folder) / RESULT, json.dumps(result.as_json()))


def load(folder: Path) -> VideoResult | None:
    p = Path(folder) / RESULT
    try:
        return VideoResult.from_json(json.loads(p.read_text()))
    except (OSError, ValueError, KeyError):
        return None


class VideoJob(BackgroundJob):
    """Runs ``process`` on a daemon thread (``jobs.BackgroundJob``); never touches Streamlit, pages
    poll it.

    ``folder`` holds the input; the annotated video and ``result.json`` are written there (the
    disk keeps the result after the job is gone). ``progress()`` hands out the latest Progress
    under a lock, ``stop()`` sets an Event asked before every frame, a failure becomes status
    "failed" with the error text. ``slots`` (a shared Semaphore) queues jobs beyond the first:
    two videos at once on 2 cores only slow each other.
    """
    USER_ERRORS = (VideoError, OSError)  # the user's file or the disk: say it plainly
    TRACEBACK_LIMIT = 6

    def __init__(self, src: Path, folder: Path, rec, threshold: float | None = None,
                 slots: threading.Semaphore | None = None):
        self.src, self.folder, self.rec, self.threshold = Path(src), Path(folder), rec, threshold
        super().__init__(f"video-{self.folder.name}", slots)
        self.out = self.folder / f"annotated{output_suffix()}"
        self._result: VideoResult | None = None
        self._error = ""

    def result(self) -> VideoResult | None:
        with self._lock:
            return self._result

    def _set(self, status: str, error: str | None = None) -> None:
        super()._set(status, error or "")

    def _user_message(self, e: BaseException) -> str:
        return str(e)

    def _work(self) -> None:
        res = process(self.src, self.rec, self.out, threshold=self.threshold,
                      should_stop=self._stop.is_set, progress=self._set_progress)
        save(self.folder, res)
        with self._lock:
            self._result = res
        self._set(res.summary["status"])


# ------------------------------------------------------------------------ clips with known truth

class ClipFace(NamedTuple):
    """One annotated face in one frame of a generated clip."""
    person: int          # index of the face in the scene's annotations: the true track
    box: tuple           # (x0, y0, x1, y1) in the clip's pixels, clipped to the frame
    label: str           # the annotation's label (with_mask / without_mask / mask_weared_incorrect)


def ken_burns(rgb: np.ndarray, truths: Sequence, size: tuple[int, int] = (640, 480), seconds: float = 4.0,
              fps: float = 30.0, seed: int = 0, zoom: tuple[float, float] = (1.0, 1.4),
              times: Sequence[float] | None = None) -> Iterator[tuple[float, np.ndarray, list[ClipFace]]]:
    """A slow pan and zoom over a still photo with VOC ``truths``: yields (t, frame, faces).

    The camera starts or ends (seeded) on the whole photo letterboxed into ``size`` and moves to a
    view ``zoom`` times closer at a seeded spot, with an ease-in-out; a face counts as in the frame
    while at least half its box is. ``times``: frame times (s) for a variable frame rate.
    """
    import cv2
    rng = np.random.default_rng(seed)
    W, H = size
    ih, iw = rgb.shape[:2]
    full = max(iw, ih * W / H)                      # view width that shows the whole photo
    z = list(zoom) if rng.random() < 0.5 else list(zoom)[::-1]
    centres = []
    for zz in z:                                     # view centres that keep the view on the photo
        slack = (full - full / zz) / 2
        centres.append((iw / 2 + rng.uniform(-1, 1) * slack, ih / 2 + rng.uniform(-1, 1) * slack * H / W))
    ts = list(times) if times is not None else [i / fps for i in range(max(1, round(seconds * fps)))]
    span = max(ts[-1], 1e-9)
    boxes = np.array([tuple(b[:4]) for b in truths], np.float64).reshape(-1, 4)
    for t in ts:
        a = min(1.0, t / span)
        a = a * a * (3 - 2 * a)                      # smoothstep: the camera eases in and out
        zz = z[0] + (z[1] - z[0]) * a
        cx = centres[0][0] + (centres[1][0] - centres[0][0]) * a
        cy = centres[0][1] + (centres[1][1] - centres[0][1]) * a
        s = W / (full / zz)                          # output px per photo px
        m = np.array([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]])
        frame = cv2.warpAffine(rgb, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        faces = []
        for k, b in enumerate(boxes):
            x0, y0, x1, y1 = b[0] * s + m[0, 2], b[1] * s + m[1, 2], b[2] * s + m[0, 2], b[3] * s + m[1, 2]
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            inside = max(0, cx1 - cx0) * max(0, cy1 - cy0)
            if inside >= 0.5 * (x1 - x0) * (y1 - y0):
                faces.append(ClipFace(k, (cx0, cy0, cx1, cy1), truths[k][4] if len(truths[k]) > 4 else ""))
        yield t, frame, faces


def write_clip(path: str | Path, frames: Iterator[tuple[float, np.ndarray, list]], fps: float = 30.0) -> list[list[ClipFace]]:
    """Encode ``ken_burns`` frames to ``path`` (.mp4 / .webm), with their times; returns the truth
    per frame."""
    writer, truth = None, []
    for t, rgb, faces in frames:
        if writer is None:
            writer = _Writer(Path(path), (rgb.shape[1], rgb.shape[0]), fps)
        writer.put(t, rgb)
        truth.append(faces)
    if writer is not None:
        writer.close()
    return truth


def cartoon_scene(n: int = 3, size: tuple[int, int] = (400, 300), face: int = 80, seed: int = 0,
                  indices: Sequence[int] | None = None) -> tuple[np.ndarray, list[F.Truth]]:
    """A still 'photo' of ``n`` demo faces (``synth.render``, tight face crops) side by side on a
    grey-green ground, with their VOC-style truths: a scene for clips on a fresh clone, where
    the dev photos are absent. ``indices``: which demo images (default 0..n-1)."""
    from .synth import render
    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = np.linspace((70, 90, 80), (150, 160, 140), h).astype(np.uint8)[:, None, :]
    truths = []
    idx = list(indices) if indices is not None else list(range(n))
    gap = (w - n * face) / (n + 1)
    for k, i in enumerate(idx[:n]):
        img, label = render(i, seed=seed)
        x0, y0 = round(gap + k * (face + gap)), round((h - face) / 2 + (k % 2 - 0.5) * face * 0.4)
        rgb[y0:y0 + face, x0:x0 + face] = np.asarray(img.convert("RGB").resize((face, face)))
        truths.append(F.Truth(x0, y0, x0 + face, y0 + face, "with_mask" if label else "without_mask"))
    return rgb, truths


def clip_metrics(frames: Sequence[Sequence[Seen]], truth: Sequence[Sequence[ClipFace]],
                 tracks: Sequence[TrackRow], threshold: float, covered: str = "mask",
                 min_face: int = 20, iou: float = 0.4) -> dict:
    """Score a run on a clip with known truth (``ken_burns``).

    Per frame, detections are paired with true faces by the Hungarian algorithm on IoU (>= ``iou``).
    A true person *counts* when their face's median shorter side over the frames they are in is
    >= ``min_face`` px (smaller faces are neither required nor held against the count, as in
    ``faces.match``). Returns: ``true_people``; ``counted`` (confirmed tracks, less those mostly
    matched to faces that do not count); ``count_error`` |counted - true| / true; ``id_switches``
    (a true person's matched track id changing, MOT-style) and ``switches_per_track``;
    ``frame_accuracy`` (each frame's own label on matched faces of counting people) and
    ``voted_accuracy`` (each matched counting person: the vote of the track that matched them
    most; unsure counts as wrong); ``unsure``; ``found`` (counting people matched at least once).
    """
    from scipy.optimize import linear_sum_assignment

    from .faces import COVERED
    sides: dict[int, list[float]] = {}
    labels: dict[int, str] = {}
    for faces in truth:
        for f in faces:
            sides.setdefault(f.person, []).append(min(f.box[2] - f.box[0], f.box[3] - f.box[1]))
            labels[f.person] = f.label
    counts_ = {p for p, s in sides.items() if np.median(s) >= min_face}
    votes = {r.track: r.label for r in tracks}
    track_hits: dict[int, dict[int, int]] = {}       # track -> person -> frames matched
    person_seq: dict[int, list[int]] = {}            # person -> matched track ids over frames
    person_frames: dict[int, list[int]] = {}         # person -> each matched frame's own label right?
    person_labels: dict[int, list[tuple[bool, str]]] = {}  # person -> (own label mask?, shown label)
    right = total = shown = by_vote = 0
    for seen, faces in zip(frames, truth):
        if not seen or not faces:
            continue
        m = F.iou_matrix([s.box for s in seen], [f.box for f in faces])
        rows, cols = linear_sum_assignment(-m)
        for r, c in zip(rows, cols):
            if m[r, c] < iou:
                continue
            s, f = seen[r], faces[c]
            if f.person in counts_ and f.label in COVERED:
                truth_mask = bool(COVERED[f.label])
                ok = int((s.p_frame >= threshold) == truth_mask)
                right += ok
                total += 1
                person_frames.setdefault(f.person, []).append(ok)
                shown += int((s.label == covered) == truth_mask)
                v = votes.get(s.track) if s.track else None
                by_vote += ok if v is None else int(v != UNSURE_LABEL and (v == covered) == truth_mask)
            if s.track:
                track_hits.setdefault(s.track, {}).setdefault(f.person, 0)
                track_hits[s.track][f.person] += 1
                person_seq.setdefault(f.person, []).append(s.track)
                person_labels.setdefault(f.person, []).append((s.p_frame >= threshold, s.label))
    # a track mostly on a face that does not count is not held against the count
    counted = sum(1 for r in tracks
                  if not track_hits.get(r.track) or max(track_hits[r.track], key=track_hits[r.track].get) in counts_)
    switches = 0
    voted_right = unsure = 0
    def flips(seq):
        return sum(a != b for a, b in zip(seq, seq[1:]))
    raw_flips = sum(flips([a for a, _ in person_labels.get(p, [])]) for p in counts_)
    shown_flips = sum(flips([b for _, b in person_labels.get(p, [])]) for p in counts_)
    per_person = [float(np.mean(person_frames[p])) for p in counts_ if person_seq.get(p) and p in person_frames]
    found = [p for p in counts_ if person_seq.get(p)]
    for p in found:
        seq = person_seq[p]
        switches += sum(1 for a, b in zip(seq, seq[1:]) if a != b)
        best = max(set(seq), key=seq.count)
        v = votes.get(best, UNSURE_LABEL)
        unsure += v == UNSURE_LABEL
        if labels[p] in COVERED and v != UNSURE_LABEL:
            voted_right += int((v == covered) == bool(COVERED[labels[p]]))
    n_true = len(counts_)
    return {"true_people": n_true, "counted": counted, "found": len(found),
            "count_error": abs(counted - n_true) / n_true if n_true else float(counted > 0),
            "id_switches": switches, "switches_per_track": switches / len(found) if found else 0.0,
            "frame_accuracy": right / total if total else float("nan"), "frame_faces": total,
            "shown_accuracy": shown / total if total else float("nan"),
            "vote_on_frames_accuracy": by_vote / total if total else float("nan"),
            "voted_accuracy": voted_right / len(found) if found else float("nan"), "voted_tracks": len(found),
            "frame_accuracy_per_track": float(np.mean(per_person)) if per_person else float("nan"),
            "unsure": unsure, "raw_flips": raw_flips, "shown_flips": shown_flips}


def evaluate_scene(rgb: np.ndarray, truths: Sequence, rec, work: Path, size=(640, 480), seconds: float = 4.0,
                   fps: float = 30.0, seed: int = 0, min_face: int = 20) -> dict:
    """Make a Ken-Burns clip of one annotated photo, process it like a user's file, score it."""
    clip = Path(work) / f"clip-{seed}{output_suffix()}"
    truth = write_clip(clip, ken_burns(rgb, truths, size, seconds, fps, seed), fps)
    frames: list[list[Seen]] = []
    res = process(clip, rec, on_frame=lambda i, t, seen: frames.append(seen))
    clip.unlink(missing_ok=True)
    m = clip_metrics(frames[:len(truth)], truth, res.tracks, rec.threshold, rec.predictor.classes[1], min_face)
    m["fps"] = res.summary["fps"]
    return m


def summarize(ms: Sequence[dict]) -> dict:
    """Clip metrics added up over clips: people-weighted count error and switches, face- and
    track-weighted accuracies."""
    def tot(k):
        return sum(m[k] for m in ms)
    true, found = tot("true_people"), tot("found")
    frame_faces = tot("frame_faces")
    return {"clips": len(ms), "true_people": true, "counted": tot("counted"), "found": found,
            "frame_faces": frame_faces,
            "count_error": sum(abs(m["counted"] - m["true_people"]) for m in ms) / true if true else math.nan,
            "count_error_total": abs(tot("counted") - true) / true if true else math.nan,
            "switches_per_track": tot("id_switches") / found if found else math.nan,
            **{k: sum(m[k] * m["frame_faces"] for m in ms if m["frame_faces"]) / frame_faces if frame_faces else math.nan
               for k in ("frame_accuracy", "shown_accuracy", "vote_on_frames_accuracy")},
            **{k: sum(m[k] * m["voted_tracks"] for m in ms if m["voted_tracks"]) / found if found else math.nan
               for k in ("voted_accuracy", "frame_accuracy_per_track")},
            "unsure": tot("unsure"),
            "raw_flips_per_track": tot("raw_flips") / found if found else math.nan,
            "shown_flips_per_track": tot("shown_flips") / found if found else math.nan}
