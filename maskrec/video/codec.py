"""Video files in and out (PyAV, i.e. FFmpeg): open and check an input, decode it on a thread,
encode frames on another.

    with Decoding("door.mp4", max_side=1280) as d: # or VideoError with a sentence for the user
        for t, rgb in d: ...                       # d.info: size, fps, frame count, codec
    w = Writer(Path("out.mp4"), (640, 360), info.fps)   # put(t, rgb) ... close()

The decoder scales each frame while converting it to RGB (swscale, outside the GIL) and takes each
frame's own timestamp, so a variable frame rate is followed as recorded; the writer keeps those
times (millisecond pts). Output: H.264 in MP4 (``libx264``, yuv420p, ``+faststart`` so a browser
starts playing before the whole file is there) when the PyAV wheel has it, else VP9 in WebM.
"""
from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

EXTENSIONS = ("mp4", "webm", "mov", "avi", "mkv", "m4v")
# Frames are decoded at most this long side: the live detector looks at 640 px, the classifier
# at 32-64 px crops, so more only costs decoding, drawing and encoding time.
PROCESS_SIDE = 1280
# Refused above 8K: one decoded frame would be over 100 MB, and decoding a few per second is
# no use. Scale such a file down first (ffmpeg -i IN -vf scale=1920:-2 OUT).
MAX_SIDE, MAX_PIXELS = 8192, 8192 * 4608
# Output codecs by file suffix: (PyAV encoder, its options, MIME type for the browser).
# ultrafast/crf 26 and VP9 realtime/cpu-used 8: a 640x480 frame encodes in a few ms on 2 cores.
CODECS = {".mp4": ("libx264", {"preset": "ultrafast", "crf": "26"}, "video/mp4"),
          ".webm": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "34", "b": "0"},
                    "video/webm")}


class VideoError(ValueError):
    """A file that cannot be processed; the message is meant for the user."""


class PictureError(VideoError):
    """A still picture given as a video. Its message says so; where pictures go instead is the
    caller's word (the CLI's ``predict``, the page's Upload photos tab)."""


class VideoInfo(NamedTuple):
    width: int
    height: int
    fps: float          # average frame rate from the container (0 when it does not say)
    frames: int         # frame count from the container (0 when it does not say)
    duration_s: float   # 0 when the container does not say
    codec: str
    container: str


class Frame(NamedTuple):
    """One decoded frame, handed from the decoder thread to the caller through a queue."""
    t: float            # seconds from the first frame
    rgb: np.ndarray     # (H, W, 3) uint8 at the processing size


def _av():
    import av  # deferred: PyAV comes with streamlit-webrtc; importing maskrec.video should not load FFmpeg
    return av


def output_suffix() -> str:
    """".mp4" where this PyAV can encode H.264, else ".webm" (VP9)."""
    return ".mp4" if CODECS[".mp4"][0] in _av().codecs_available else ".webm"


def mime(path: str | Path) -> str:
    return CODECS.get(Path(path).suffix.lower(), CODECS[".mp4"])[2]


def open_video(src: str | Path):
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
        raise PictureError(f"{p.name} is a picture ({fmt.replace('_pipe', '')}), not a video")
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
    container, stream = open_video(src)
    with container:
        return read_info(container, stream)


def read_info(container, stream) -> VideoInfo:
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    dur = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else (
        container.duration / 1e6 if container.duration else 0.0)
    frames = int(stream.frames or 0) or (round(dur * fps) if dur and fps else 0)
    return VideoInfo(stream.codec_context.width, stream.codec_context.height, fps, frames, dur,
                     stream.codec_context.name, container.format.name)


def process_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """The processing size: at most ``max_side`` long, even sides (yuv420p needs them)."""
    k = min(1.0, max_side / max(w, h))
    return max(2, round(w * k) // 2 * 2), max(2, round(h * k) // 2 * 2)


def decode_frames(container, stream, size: tuple[int, int], stop: threading.Event, out: queue.Queue,
                  warnings: list[str]) -> None:
    """Decoder thread: puts Frame items, then None. A packet that fails to decode is skipped; a
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
                        out.put(Frame(t, rgb), timeout=0.2)
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


class Decoding:
    """A file decoded on its own thread, as every reader of a video here does it::

        with Decoding("door.mp4", max_side=1280) as d:    # VideoError: not a usable video
            for t, rgb in d:                               # Frame items at d.size
                ...
        d.info, d.declared, d.warnings                     # what the file said; what went wrong

    Leaving the block (at the end, on a break or on an error) stops the decoder, drains the queue
    so that it is never stuck putting a frame or its last None, joins it and closes the file."""

    def __init__(self, src: str | Path, max_side: int = PROCESS_SIDE, queue_size: int = 4):
        self.container, self.stream = open_video(src)
        try:
            self.info = read_info(self.container, self.stream)
        except BaseException:
            self.container.close()
            raise
        self.declared = int(self.stream.frames or 0)  # stated by the container (MP4/MOV), not estimated
        self.size = process_size(self.info.width, self.info.height, max_side)
        self.warnings: list[str] = []
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=decode_frames, name="video-decode", daemon=True,
                                        args=(self.container, self.stream, self.size, self._stop, self._q,
                                              self.warnings))

    def __enter__(self) -> "Decoding":
        self._thread.start()
        return self

    def __iter__(self):
        while (item := self._q.get()) is not None:
            yield item

    def __exit__(self, *exc) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.2)
            except queue.Empty:
                pass
        self._thread.join()
        self.container.close()


class Writer:
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
