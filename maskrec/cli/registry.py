"""Every command of ``python -m maskrec``: one row each (name, one-line help, module).

The top-level parser reads only these rows, so ``--help`` and an unknown command cost no import
of torch, scikit-learn, ONNX Runtime or OpenCV; ``maskrec.cli.main`` imports the chosen command's
module alone. The modules are named by strings for exactly that reason. A command module has
``add_arguments(parser)`` and ``run(args) -> int | None`` (None means 0); adding a command is one
new module in this package and one row here.
"""
from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    name: str
    help: str
    module: str  # imported only when this command runs (or when every parser is asked for)


COMMANDS: tuple[Command, ...] = (
    Command("demo-data", "write the built-in demo dataset (report layout)", "maskrec.cli.demo_data"),
    Command("scan", "counts, image sizes and skipped files of a dataset", "maskrec.cli.scan"),
    Command("models", "list the networks", "maskrec.cli.models"),
    Command("train", "train a network; one line per epoch", "maskrec.cli.train"),
    Command("sweep", "search a net's recipe with Optuna, judged on a validation split; one line per trial",
            "maskrec.cli.sweep"),
    Command("soup", "average the weights of several fine-tunes of one net into one checkpoint (a model soup)",
            "maskrec.cli.soup"),
    Command("evaluate", "F1/AUC/accuracy of a checkpoint on a dataset", "maskrec.cli.evaluate"),
    Command("threshold", "pick a checkpoint's decision threshold on a dataset and save it", "maskrec.cli.threshold"),
    Command("predict", "classify faces in images", "maskrec.cli.predict"),
    Command("video", "follow and count faces through a video file; an annotated copy to --out", "maskrec.cli.video"),
    Command("serve", "recognition over HTTP for other programs (FastAPI; the API at /docs)", "maskrec.cli.serve"),
    Command("export", "export a checkpoint to ONNX or TorchScript (verified)", "maskrec.cli.export"),
    Command("review", "likely label errors of a dataset, most likely wrong first; one JSON line each",
            "maskrec.cli.review"),
    Command("relabel", "record review decisions (relabel, exclude, keep, undo); the folder is not touched",
            "maskrec.cli.relabel"),
    Command("bench", "speed against baselines measured in the same run (see docs/guide.md, Performance)",
            "maskrec.cli.bench"),
)
