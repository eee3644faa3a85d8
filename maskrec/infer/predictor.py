"""Predictor: one checkpoint file -> preprocessing -> P(mask) for face images.

    pred = Predictor.load("checkpoints/net1.pt")
    p = pred.predict_proba([pil_or_rgb_array, ...])   # (N,) P(mask), one batch
    labels = pred.labels(p)                              # "mask" / "no_mask" (/ "unsure") at its operating point

Everything (net, input size, preprocessing, threshold) comes from the checkpoint itself: the
threshold of its default operating point (``maskrec.infer.operating``: ``street`` where the checkpoint
carries one), or of the one named by ``operating_point=`` (``pred.op``; ``pred.op.name`` says which). Images go
through the same ``data.to_input`` as training, all of a frame's faces in one batch. The net runs on
an inference engine (``maskrec.infer.engines``: torch, torch-bf16, onnx, onnx-int8, ...). By default it is
the fastest measured on this machine for this checkpoint (``maskrec.infer.probe``, once per CPU and
checkpoint; ``exact=True``: the fastest fp32 one, for scoring); ``engine="torch"`` asks for one, and
``$MASKREC_ENGINE`` pins the default. ``pred.engine_info`` says what runs and why (a plain dict;
``describe_engine`` puts it in words). ``tta=True`` averages each face's P(mask) with its mirror
image's (one batch of 2B; off by default, ``TTA``).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maskrec.infer import calibration
from maskrec.models import checkpoint
from maskrec.infer import probe as engine_probe
from maskrec.infer import engines
from maskrec.data import to_input
from maskrec.infer.operating import OperatingPoint, of_checkpoint

# Flip test-time augmentation is off: it does not pay for the shipped nets, which trained on flipped
# faces. Measured (``python -m maskrec bench --only tta``, docs/guide.md, Measured results): at their saved
# thresholds it moved F1 on the dev test split and the held-out scene crops by -0.008..+0.003 (a
# face or two either way), AUC by +0.000..+0.001, and it cost 1.7-2x a face's time (Net1 at 8 faces
# ~4.7x: a batch of 16 falls off a cache cliff that 8 does not).
TTA = False
ENGINE_ENV = "MASKREC_ENGINE"  # names the default engine instead of measuring it (a test, or a user, pins one)


class Predictor:
    def __init__(self, ckpt: dict, device: str | torch.device = "cpu", path: Path | None = None,
                 engine: str | None = None, tta: bool = TTA, exact: bool = False,
                 operating_point: str | None = None):
        self.path = path
        self.tta = bool(tta)
        self.exact = bool(exact)  # the default engine only: fp32, so scores are the checkpoint's own
        self.net: str = ckpt["net"]
        self.input_size: int = int(ckpt["input_size"])
        self.classes: list[str] = list(ckpt.get("classes", ["no_mask", "mask"]))
        self.operating_points, self.default_op = of_checkpoint(ckpt)
        name = operating_point or self.default_op
        if name not in self.operating_points:
            raise ValueError(f"the checkpoint has no operating point {name!r}; it has: "
                             f"{', '.join(self.operating_points)}")
        self.op: OperatingPoint = self.operating_points[name]
        self.threshold: float = self.op.threshold
        self.metrics: dict = dict(ckpt.get("metrics", {}))
        self.config: dict = dict(ckpt.get("config", {}))
        self.device = torch.device(device)
        self.model = checkpoint.model(ckpt, path.name if path else "the checkpoint")
        self.model.to(self.device, memory_format=torch.channels_last)
        pinned = os.environ.get(ENGINE_ENV) or None
        self._asked = engine or pinned
        self._how = "asked" if engine else "env" if pinned else "gpu" if self.device.type != "cpu" else "probe"
        if self._asked is not None:
            spec = engines.ENGINES.get(self._asked)
            if spec is None or not spec.available() or (self.device.type != "cpu" and self._asked != "torch"):
                why = "unknown" if spec is None else spec.why_not() or "CPU only"
                raise ValueError(f"engine {self._asked!r} cannot run here ({why}); "
                                 f"these can: {', '.join(engines.available())}")
        # Built on first use: a Predictor loaded for its threshold or metrics never pays for a
        # probe, an export or a calibration.
        self._engine: engines.Engine | None = None
        self._info: dict = {}
        self._engine_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", engine: str | None = None,
             tta: bool = TTA, exact: bool = False, operating_point: str | None = None) -> "Predictor":
        return cls(checkpoint.load(path), device, Path(path), engine, tta, exact, operating_point)

    @property
    def engine(self) -> engines.Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine, self._info = self._build()
            return self._engine

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def engine_info(self) -> dict:
        """What runs, as a plain dict: ``engine``, ``precision`` (fp32/bf16/int8), ``calibration``
        (int8's faces in words, else None) and ``calibration_count``, ``weight_bits`` (int8's: 7 on x86
        without VNNI, else 8; None for the other engines), ``chosen_by`` ("asked", "env"
        for $MASKREC_ENGINE, "gpu", "probe" measured now, "probe-cache" measured before) and the
        probe's ``ms_per_face``. Builds the engine (and probes) if nothing has yet."""
        self.engine
        return dict(self._info, ms_per_face=dict(self._info["ms_per_face"]))

    def calibration_faces(self) -> calibration.Calibration:
        """int8's faces: a fixed sample of this checkpoint's training data, or the stated fallback."""
        return calibration.for_data(self.config.get("data"), self.input_size)

    def _build(self) -> tuple[engines.Engine, dict]:
        ms: dict[str, float] = {}
        how = self._how
        if self._asked is not None or how == "gpu":
            name = self._asked or "torch"  # a GPU runs torch: the other engines are CPU-only
            eng = engines.make(name, self.model, self.input_size,
                               calibration=self.calibration_faces() if name == "onnx-int8" else None)
        else:
            got = engine_probe.pick(self.model, self.input_size,
                                    self.calibration_faces() if "onnx-int8" in engines.eligible() else None, self.exact)
            ms, how = got.ms_per_face, "probe" if got.probed else "probe-cache"
            eng = got.engine or engines.make(got.name, self.model, self.input_size,
                                             calibration=self.calibration_faces() if got.name == "onnx-int8" else None)
        cal = getattr(eng, "calibration", None)
        return eng, {"engine": eng.name, "precision": engines.ENGINES[eng.name].precision,
                     "weight_bits": getattr(eng, "weight_bits", None),
                     "calibration": cal.source if cal else None, "calibration_count": cal.count if cal else 0,
                     "chosen_by": how, "exact": self.exact, "ms_per_face": ms}

    def preprocess(self, images) -> torch.Tensor:
        # list of PIL RGB images or (H, W, 3) uint8 RGB arrays -> (B, 3, S, S) uint8
        arrs = [to_input(im if isinstance(im, Image.Image) else Image.fromarray(im), self.input_size)
                for im in images]
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2)

    def predict_tensor(self, x: torch.Tensor, threads: int | None = None, tta: bool | None = None) -> np.ndarray:
        """(B, 3, S, S) uint8 -> (B,) P(mask). ``threads`` None: ``engines.threads_for`` decides;
        ``tta`` None: the Predictor's own setting."""
        if len(x) == 0:
            return np.zeros(0, np.float32)
        return self.engine(x, threads, tta=self.tta if tta is None else tta)

    def predict_proba(self, images, threads: int | None = None, tta: bool | None = None) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros(0, np.float32)
        return self.predict_tensor(self.preprocess(images), threads, tta)

    def labels(self, p: np.ndarray, threshold: float | None = None) -> list[str]:
        """Labels at the operating point (its unsure band included); a ``threshold`` given instead
        is a plain cut with no band."""
        if threshold is None:
            return self.op.labels(p, self.classes)
        return [self.classes[1] if v >= threshold else self.classes[0] for v in np.atleast_1d(p)]


def set_operating_point(path: str | Path, op: OperatingPoint, default: bool = True) -> None:
    """Save an operating point into a checkpoint (atomically) under its name; ``default``: the one
    recognition uses unless told (its threshold is then also the checkpoint's ``threshold``)."""
    if not 0.0 <= op.threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {op.threshold}")
    ck = checkpoint.load(path)
    # a checkpoint of before issue 34 keeps its picked threshold as "saved" (a run's own 0.5 was never picked)
    ops = {n: o.as_dict() for n, o in of_checkpoint(ck)[0].items()} \
        if ck.get("operating_points") or ck.get("threshold_how") else {}
    ops[op.name] = op.as_dict()
    ck["operating_points"] = ops
    if default or ck.get("operating_point") not in ops:
        ck["operating_point"] = op.name
        ck["threshold"], ck["threshold_how"] = float(op.threshold), op.how
    checkpoint.save(Path(path), {k: v for k, v in ck.items() if k != "format"})


def set_threshold(path: str | Path, threshold: float, how: str = "", name: str = "saved") -> None:
    """Save a chosen decision threshold into a checkpoint (atomically) as the operating point
    ``name``, the one recognition uses from then on."""
    set_operating_point(path, OperatingPoint(name, float(threshold), None, how))


def describe_engine(info: dict) -> str:
    """``Predictor.engine_info`` in words, for the Recognize page."""
    why = {"asked": "asked for", "env": f"pinned by ${ENGINE_ENV}", "gpu": "the engine a GPU runs",
           "probe": "the fastest measured here", "probe-cache": "the fastest measured here"}[info["chosen_by"]]
    if info["chosen_by"].startswith("probe") and info["exact"]:
        why = why.replace("fastest", "fastest fp32")
    ms = info.get("ms_per_face") or {}
    timed = f" ({', '.join(f'{n} {t:.2f}' for n, t in sorted(ms.items(), key=lambda kv: kv[1]))} ms a face)" if ms else ""
    cal = f"; calibrated on {info['calibration']}" if info.get("calibration") else ""
    bits = ", 7-bit weights: this CPU has no VNNI" if info.get("weight_bits") == 7 else ""
    return f"{info['engine']} engine ({info['precision']}{bits}), {why}{timed}{cal}"
