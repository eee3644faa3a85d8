"""frame: 640x480 recognition (detect + classify + draw) frames/s against building the models per
frame and classifying one face at a time (``evaluation.baselines.naive_frame``); and the live page's
frame callback with the detector on one frame in ``LIVE_DETECT_EVERY`` against the same callback
detecting every frame (the live stream before it carried boxes between detections).
busy: the same per face (Net1) and per frame while a training process uses the cores
(``training_beside``: ``python -m bench _load``), what the thread policy (engines.threads_for) is for."""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from evaluation.baselines import naive_frame, naive_predict
from evaluation.detection import letterbox
from maskrec import faces
from maskrec.config import DEV_SCENES
from maskrec.faces import LIVE_DEFAULT
from maskrec.infer.predictor import Predictor
from maskrec.live.channel import LIVE_DETECT_EVERY, LiveBuffer, frame_callback
from maskrec.live.recognize import Recognizer
from maskrec.data.synth import render

from bench.common import child_env, faces_for, median_ms, row
from bench.sections.infer import naive_model
from bench.sections.step import cpu_speed_settings, step_rate


def frame_with_faces(rec, want: int = 4) -> tuple[np.ndarray, int]:
    """A 640x480 frame (a dev scene, letterboxed as a webcam frame would be) in which rec finds at
    least ``want`` faces, and how many it finds: a frame with nobody in it would time the detector
    alone, not recognition. Scenes are tried in name order, so the frame is the same every run.
    Without the dev scenes: a 2x2 mosaic of demo faces (cartoons, which the detector may miss)."""
    best = (None, -1)
    for img_path, _ in (faces.scenes(DEV_SCENES) if DEV_SCENES.is_dir() else []):
        frame = letterbox(faces.read_rgb(img_path))
        found = len(rec.recognize(frame).faces)
        if found > best[1]:
            best = (frame, found)
        if found >= want:
            return best
    if best[0] is not None:
        return best
    tiles = [np.asarray(render(k)[0].convert("RGB").resize((320, 240))) for k in range(4)]
    frame = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    return frame, len(rec.recognize(frame).faces)


def bench_frame(quick: bool, ckpt: Path, detector: str | None = None) -> list[dict]:
    detector = detector or LIVE_DEFAULT  # what the live page runs
    rec = Recognizer.load(ckpt, detector)
    frame, faces_found = frame_with_faces(rec)
    n = 10 if quick else 60
    ours_ms = median_ms(lambda: rec.annotate(frame), n)

    base_ms = median_ms(lambda: naive_frame(ckpt, detector, frame), max(3, n // 10))
    r = row("frame", f"640x480 frame, {detector} + {ckpt.stem}, {faces_found} faces", 1000 / ours_ms,
            1000 / base_ms, "frames/s", True, None,
            f"goal >= 30 frames/s: {'met' if 1000 / ours_ms >= 30 else 'missed'}")
    # in turns, three rounds each, medians: a load that comes and goes hits both the same
    rounds = [(live_ms(rec, frame, 1, n), live_ms(rec, frame, LIVE_DETECT_EVERY, n)) for _ in range(3)]
    every_ms, live = (float(np.median(v)) for v in zip(*rounds))
    r2 = row("frame", f"live callback, tracking, detector 1 frame in {LIVE_DETECT_EVERY} vs every frame", 1000 / live,
             1000 / every_ms, "frames/s", True, None, f"{faces_found} faces; goal >= 25 frames/s: "
             f"{'met' if 1000 / live >= 25 else 'missed'}")
    return [{**r, "faces": faces_found}, {**r2, "faces": faces_found}]


def live_ms(rec, frame: np.ndarray, every: int, n: int) -> float:
    """Mean ms a frame through the live page's frame callback (tracking on, 96 px crops for the
    panel, as the page runs it) over n frames after a first one; a mean, not a median: with
    ``every`` > 1 the frames alternate between detected and carried."""
    import av  # deferred: PyAV, as in channel.frame_callback
    cb = frame_callback(rec, LiveBuffer(every=every), crop_side=96)
    vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
    cb(vf)
    n -= n % every  # whole detection cycles
    t = time.perf_counter()
    for _ in range(n):
        cb(vf)
    return 1000 * (time.perf_counter() - t) / n


def train_load(net: str = "net2", batch: int = 64) -> None:
    """The bench's own load: training steps, as fit() runs them (bf16 where the CPU has it, torch's
    default threads, i.e. every core), until killed. Says "ready" once the first step is done."""
    cl, bf16 = cpu_speed_settings()
    step_rate(net, batch, cl, bf16, seconds=0.5)  # its kernels built, the load is at full weight
    print("ready", flush=True)
    while True:
        step_rate(net, batch, cl, bf16, seconds=60.0)


@contextmanager
def training_beside():
    """A training process running on the same cores for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", "_load"], stdout=subprocess.PIPE, text=True,
                            env=child_env())
    try:
        # step_rate's first timed window must end before "ready": wait for the line, not a sleep
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bench's training load did not start")
        yield proc
    finally:
        proc.kill()
        proc.wait()


def bench_busy(quick: bool, checkpoints: dict[str, Path]) -> list[dict]:
    """Per face (Net1) and per frame, while a training process uses the cores. Baselines as in the
    quiet rows: a naive per-face call with torch's default threads, and the naive frame."""
    rows = []
    path = checkpoints["net1"]
    pred = Predictor.load(path)
    model = naive_model(pred)
    one = faces_for(pred.input_size, 1)
    rec = Recognizer.load(path, LIVE_DEFAULT)
    frame, found = frame_with_faces(rec)
    pred.predict_proba(one)  # engines built before the load starts, as a live page has them
    n = 20 if quick else 60
    with training_beside():
        base1 = median_ms(lambda: naive_predict(model, pred.input_size, one), n)
        ours1 = median_ms(lambda: pred.predict_proba(one), n)
        base_frame = median_ms(lambda: naive_frame(path, LIVE_DEFAULT, frame), max(3, n // 10))
        ours_frame = median_ms(lambda: rec.annotate(frame), n)
    rows.append(row("busy", f"net1 one face, batch 1, training beside [{pred.engine_name}]", ours1, base1,
                    "ms", False, None, "torch threads in the baseline: its default (every core)"))
    fps = 1000 / ours_frame
    rows.append(row("busy", f"640x480 frame, {LIVE_DEFAULT} + net1, {found} faces, training beside", fps,
                    1000 / base_frame, "frames/s", True, None,
                    f"goal >= 10 frames/s while training: {'met' if fps >= 10 else 'missed'}"))
    return rows
