"""The tracking run: a video file through detect -> classify -> track -> draw, on the caller's
thread (``process``) or on a background job the pages poll (``VideoJob``).

    res = process("door.mp4", rec, out="door-annotated.mp4", progress=print)   # a VideoResult
    job = VideoJob(src, folder, rec).start()   # the same on a thread: progress(), stop(), result()

Three threads: the decoder (``codec.decode_frames``), this one (``Recognizer.recognize`` classifies
a frame's faces in one batch, ``maskrec.live.track`` follows them, ``recognize.draw_tracked`` draws),
and the encoder (``codec.Writer``). Bounded queues between them keep memory flat and let decoding
and encoding overlap the models.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

from maskrec.jobs.background import BackgroundJob
from maskrec.live.recognize import draw_tracked
from maskrec.live.track import Seen, Timeline, Tracker, tracker_for
from maskrec.video.codec import PROCESS_SIDE, Decoding, PictureError, VideoError, Writer, output_suffix
from maskrec.video.follow import DETECT_EVERY, Cuts, Follower
from maskrec.video.result import Thumbs, VideoResult, make_result, save


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


def process(src: str | Path, rec, out: str | Path | None = None, *, threshold: float | None = None,
            should_stop: Callable[[], bool] = lambda: False,
            progress: Callable[[Progress], None] | None = None,
            on_frame: Callable[[int, float, list[Seen]], None] | None = None,
            max_side: int = PROCESS_SIDE, tracker: Tracker | None = None, detect_every: int = DETECT_EVERY,
            cuts: bool = True) -> VideoResult:
    """Recognise and follow every face of ``src``; write the annotated video to ``out`` (.mp4 or
    .webm) if given. ``should_stop`` is asked before each frame: a stopped run returns what it
    has (status "stopped") and its output plays up to there. ``on_frame(index, t, seen)``: each
    frame's tracked faces (for evaluation). ``detect_every``: run the detector on one frame in
    this many, the tracker carrying the boxes between (``follow``); ``cuts``: end every track at
    a scene cut. Raises VideoError for a file that is not a usable video.
    """
    thr = rec.threshold if threshold is None else float(threshold)
    classes = rec.predictor.classes
    writer: Writer | None = None
    thumbs = Thumbs()
    n, t, stopped = 0, 0.0, False
    with_faces, most = 0, 0  # detection frames that found a face; the most faces on one
    with Decoding(src, max_side) as video:
        info, size, warnings = video.info, video.size, video.warnings
        tracker = tracker or tracker_for(rec, threshold, detect_every)  # None: the operating point, band included
        follow = Follower(rec.recognize, tracker, thr, detect_every, Cuts(info.fps) if cuts else None, rec.margin)
        timeline = Timeline(classes[1])
        t_start = time.perf_counter()
        try:
            for frame_t, rgb in video:
                if should_stop():  # before t moves on: a stopped run covers up to its last processed frame
                    stopped = True
                    break
                t = frame_t
                res, seen, detected = follow.frame(t, rgb)
                if detected and res.faces:
                    with_faces, most = with_faces + 1, max(most, len(res.faces))
                timeline.add(int(t), seen)
                for f, s in zip(res.faces, seen):
                    if s.track and detected:
                        thumbs.offer(s.track, rgb, f.crop)
                if out is not None:
                    if writer is None:
                        writer = Writer(Path(out), size, info.fps)
                    writer.put(t, draw_tracked(rgb, res, seen, classes[1]))
                if on_frame:
                    on_frame(n, t, seen)
                n += 1
                if progress:
                    progress(Progress(n, info.frames, t, time.perf_counter() - t_start))
        finally:
            if writer is not None:
                writer.close()
    declared = video.declared
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
    return make_result(tracker, timeline, info, size, frames=n, last_t=t, elapsed_s=elapsed, stopped=stopped,
                       warnings=warnings, thumbs=thumbs, out=out if writer is not None else None,
                       settings={"detect_every": detect_every, "scene_cuts": follow.n_cuts if cuts else None,
                                 "frames_with_faces": with_faces, "most_faces_in_a_frame": most})


class VideoJob(BackgroundJob):
    """Runs ``process`` on a daemon thread (``jobs.BackgroundJob``); never touches Streamlit, pages
    poll it.

    ``folder`` holds the input; the annotated video and ``result.json`` are written there (the
    disk keeps the result after the job is gone). ``progress()`` hands out the latest Progress
    under a lock, ``stop()`` sets an Event asked before every frame, a failure becomes status
    "failed" with the error text. ``slots`` (a shared Semaphore) queues jobs beyond the first:
    two videos at once on 2 cores only slow each other. ``name``: the file's name as the user knows
    it (an upload is saved as ``input.<ext>``), the name its error messages give.
    """
    USER_ERRORS = (VideoError, OSError)  # the user's file or the disk: say it plainly
    TRACEBACK_LIMIT = 6

    def __init__(self, src: Path, folder: Path, rec, threshold: float | None = None,
                 slots: threading.Semaphore | None = None, name: str | None = None):
        self.src, self.folder, self.rec, self.threshold = Path(src), Path(folder), rec, threshold
        self.name = name or self.src.name
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
        # codec and process name the file they read: here the saved copy, not the user's file
        said = str(e).replace(self.src.name, self.name)
        return f"{said}: drop it on the Upload photos tab" if isinstance(e, PictureError) else said

    def _work(self) -> None:
        res = process(self.src, self.rec, self.out, threshold=self.threshold,
                      should_stop=self._stop.is_set, progress=self._set_progress)
        save(self.folder, res)
        with self._lock:
            self._result = res
        self._set(res.summary["status"])
