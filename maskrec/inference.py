"""Predictor: one checkpoint file -> preprocessing -> P(mask) for face images.

    pred = Predictor.load("checkpoints/net1.pt")
    p = pred.predict_proba([pil_or_rgb_array, ...])   # (N,) P(mask), one batch
    labels = pred.labels(p)                              # "mask" / "no_mask" at the saved threshold

Everything (net, input size, preprocessing, threshold) comes from the checkpoint itself. Images go
through the same ``data.to_input`` as training, all of a frame's faces in one batch. The net runs on
an inference engine (``maskrec.engines``: torch, torch-bf16, onnx, onnx-int8, ...), by default the one
``engines.choose()`` picks for this machine; ``Predictor.load(path, engine="torch")`` asks for one.
``tta=True`` averages each face's P(mask) with its mirror image's (one batch of 2B; off by default, ``TTA``).
"""
from __future__ import annotations

from pathlib import Path

import threading

import numpy as np
import torch
from PIL import Image

from . import checkpoint, engines
from .data import to_input
from .models import build

# Flip test-time augmentation is off: it does not pay for the shipped nets, which trained on flipped
# faces. Measured (``python -m maskrec bench --only tta``, README Measured results): at their saved
# thresholds it moved F1 on the dev test split and the held-out scene crops by -0.008..+0.003 (a
# face or two either way), AUC by +0.000..+0.001, and it cost 1.7-2x a face's time (Net1 at 8 faces
# ~4.7x: a batch of 16 falls off a cache cliff that 8 does not).
TTA = False


class Predictor:
    def __init__(self, ckpt: dict, device: str | torch.device = "cpu", path: Path | None = None,
                 engine: str | None = None, tta: bool = TTA):
        self.path = path
        self.tta = bool(tta)
        self.net: str = ckpt["net"]
        self.input_size: int = int(ckpt["input_size"])
        self.classes: list[str] = list(ckpt.get("classes", ["no_mask", "mask"]))
        self.threshold: float = float(ckpt.get("threshold", 0.5))
        self.metrics: dict = dict(ckpt.get("metrics", {}))
        self.config: dict = dict(ckpt.get("config", {}))
        self.device = torch.device(device)
        self.model = build(self.net, dropout=self.config.get("dropout"))
        try:
            self.model.load_state_dict(ckpt["model"])
        except (RuntimeError, KeyError) as e:
            raise checkpoint.CheckpointError(
                f"the weights in {path.name if path else 'the checkpoint'} do not fit {self.net}: "
                f"{str(e).splitlines()[0]}") from None
        self.model.eval().to(self.device, memory_format=torch.channels_last)
        self.engine_name = engine or engines.choose(device=self.device)
        spec = engines.ENGINES.get(self.engine_name)
        if spec is None or not spec.available() or (self.device.type != "cpu" and self.engine_name != "torch"):
            why = "unknown" if spec is None else spec.why_not() or "CPU only"
            raise ValueError(f"engine {self.engine_name!r} cannot run here ({why}); "
                             f"these can: {', '.join(engines.available())}")
        # Built on first use: a Predictor loaded for its threshold or metrics never pays for an
        # export or a calibration.
        self._engine: engines.Engine | None = None
        self._engine_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", engine: str | None = None,
             tta: bool = TTA) -> "Predictor":
        return cls(checkpoint.load(path), device, Path(path), engine, tta)

    @property
    def engine(self) -> engines.Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = engines.make(self.engine_name, self.model, self.input_size)
            return self._engine

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
        t = self.threshold if threshold is None else threshold
        return [self.classes[1] if v >= t else self.classes[0] for v in np.atleast_1d(p)]


def set_threshold(path: str | Path, threshold: float, how: str = "") -> None:
    """Save a chosen decision threshold into a checkpoint (atomically), for recognition to use."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    ck = checkpoint.load(path)
    ck["threshold"] = float(threshold)
    ck["threshold_how"] = how
    checkpoint.save(Path(path), {k: v for k, v in ck.items() if k != "format"})
