"""Export a checkpoint to ONNX or TorchScript and prove the export computes the same outputs.

The exported graph takes (B, 3, S, S) float in [0, 1] (see the checkpoint's preprocessing) and
returns (B, 2) log-probabilities [no_mask, mask]. ``to_onnx`` is the one ONNX writer, also used by
``maskrec.infer.engines`` for its ONNX Runtime engines; this module reads checkpoints itself
(``maskrec.models.checkpoint``), so it sits below inference and engines, never above them.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from maskrec.models import checkpoint

TOLERANCE = 1e-4


def to_onnx(model: torch.nn.Module, example: torch.Tensor, out: str | Path, output: str = "log_probs") -> None:
    """Write ``model`` (in eval mode) as ONNX to ``out``: input "image" (B, 3, S, S), the batch free.

    The exporter puts the model back into the train/eval mode it found it in, so a wrapper module
    must be put into eval mode itself, or its net comes back in train mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter handles these plain conv stacks with a dynamic batch.
        torch.onnx.export(model, (example,), str(out), dynamo=False, input_names=["image"],
                          output_names=[output], dynamic_axes={"image": {0: "batch"}, output: {0: "batch"}})


def export(ckpt_path: str | Path, fmt: str, out: str | Path) -> dict:
    ckpt = checkpoint.load(ckpt_path)
    model = checkpoint.model(ckpt, Path(ckpt_path).name)
    s = int(ckpt["input_size"])
    example = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    check = torch.rand(5, 3, s, s, generator=torch.Generator().manual_seed(1))  # another batch size
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        want = model(check).numpy()
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(model, example)
        scripted.save(str(out))
        with torch.inference_mode():
            got = torch.jit.load(str(out))(check).numpy()
    elif fmt == "onnx":
        import onnxruntime as ort  # optional and heavy: only this format needs it

        to_onnx(model, example, out)
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": check.numpy()})[0]
    else:
        raise ValueError(f"unknown export format {fmt!r} (onnx or torchscript)")
    diff = float(np.abs(got - want).max())
    if diff > TOLERANCE:
        raise RuntimeError(f"the {fmt} export differs from the checkpoint by {diff:.2e} (> {TOLERANCE})")
    return {"format": fmt, "out": str(out), "net": ckpt["net"], "input": [None, 3, s, s], "max_abs_diff": diff}
