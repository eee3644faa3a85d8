"""tta: flip test-time augmentation against none, same checkpoint and engine: F1 (at the saved
threshold and at 0.5), AUC and label accuracy on the dev test split and on the crops of the
held-out dev scenes (default engine, then an exact fp32 one), and ms per face (batch 1, 8)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from maskrec.infer import engines
from maskrec.config import DEV_DATA, DEV_SCENES
from maskrec.data import discover, load_split
from maskrec.infer.predictor import Predictor
from maskrec.core.metrics import at_threshold
from maskrec.data.synth import ensure_demo_data

from bench.common import faces_for, median_ms, row


def tta_sets() -> list[tuple[str, object]]:
    """(name, Dataset) to score flip TTA on: the dev test split and the crops of the held-out dev
    scenes (a VOC folder's test split), where present; else the demo data's test split."""
    sets = [(name, discover(root)) for name, root, ok in (
        ("dev test", DEV_DATA, (DEV_DATA / "test").is_dir()),
        ("scene crops", DEV_SCENES, DEV_SCENES.is_dir())) if ok]  # the crops' test split: the held-out scenes
    return sets or [("demo test", discover(ensure_demo_data()))]


def tta_gain(net: str, pred, sets) -> list[dict]:
    rows = []
    tag = f" [{pred.engine_name}]"
    for set_name, ds in sets:
        X, y, _ = load_split(ds, "test", pred.input_size)
        y = y.numpy()
        p = {tta: np.concatenate([pred.predict_tensor(X[i:i + 256], tta=tta) for i in range(0, len(X), 256)])
             for tta in (False, True)}
        for thr, how in ((pred.threshold, "saved"), (0.5, "0.5")):
            off, on = at_threshold(y, p[False], thr), at_threshold(y, p[True], thr)
            was, now = p[False] >= thr, p[True] >= thr
            fixed, broke = int(np.sum((now == y) & (was != y))), int(np.sum((now != y) & (was == y)))
            what = f"{net} {set_name} ({len(y)}), thr {thr:.3f}{' saved' if how == 'saved' else ''}{tag}"
            for metric in ("f1", "accuracy"):  # accuracy at the saved threshold: the labels a frame shows
                rows.append(row("tta", what, on[metric], off[metric], metric, True, None,
                                f"flip - none {on[metric] - off[metric]:+.4f}; labels fixed {fixed}, broken {broke}"))
        auc_off, auc_on = at_threshold(y, p[False], 0.5)["auc"], at_threshold(y, p[True], 0.5)["auc"]
        if auc_off is not None:
            rows.append(row("tta", f"{net} {set_name} ({len(y)}){tag}", auc_on, auc_off, "auc", True, None,
                            f"flip - none {auc_on - auc_off:+.4f}"))
    return rows


def bench_tta(quick: bool, checkpoints: dict[str, Path], sets=None) -> list[dict]:
    """Flip TTA (``tta=True``: each face and its mirror in one batch, P(mask) averaged) against the
    same Predictor without it. Gain: scores on real faces (``sets``, default ``tta_sets()``), for the
    default engine and for an exact fp32 one (the Evaluate page's). Cost: ms per face of the default
    engine, faces as the Recognizer passes them (RGB crops through predict_proba), interleaved
    rounds, best of each."""
    rows = []
    sets = tta_sets() if sets is None else sets
    n, rounds = (20, 1) if quick else (100, 3)
    for net, path in checkpoints.items():
        # the engines the app and the Evaluate page pick here (measured by engine_probe)
        default, exact = Predictor.load(path).engine_name, Predictor.load(path, exact=True).engine_name
        for name in dict.fromkeys([default] + ([] if quick else [exact])):
            rows += tta_gain(net, Predictor.load(path, engine=name), sets)
        pred = Predictor.load(path, engine=default)
        for k in (1, 8):
            faces = faces_for(pred.input_size, k)
            off = on = float("inf")
            for _ in range(rounds):
                off = min(off, median_ms(lambda: pred.predict_proba(faces, tta=False), n) / k)
                on = min(on, median_ms(lambda: pred.predict_proba(faces, tta=True), n) / k)
            what = f"{net} {'one face' if k == 1 else f'{k} faces, one batch'}, flip vs none [{default}]"
            rows.append(row("tta", what, on, off, "ms/face", False, None,
                            f"flip costs {on / off:.2f}x (+{on - off:.3f} ms a face)"))
    return rows
