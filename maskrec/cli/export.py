"""``export CHECKPOINT --format onnx|torchscript OUT``: an exported model, verified against the checkpoint."""
from __future__ import annotations

from maskrec.infer.export import export


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    s.add_argument("out")


def run(a):
    res = export(a.checkpoint, a.format, a.out)
    print(f"wrote {res['out']} ({res['format']}, {res['net']}, input {res['input']}); "
          f"max |difference| to the checkpoint {res['max_abs_diff']:.2e}")
