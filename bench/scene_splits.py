"""Cut a VOC scenes folder into a train+test folder and a validation folder, for shipping checkpoints.

    python bench/scene_splits.py ../shared/datasets/facemask-scenes-dev /tmp/ship/scenes [--val 0.2]

OUT/trainval: every scene linked, with ImageSets/Main/train.txt (the train scenes less a seeded
``--val`` share of them) and test.txt (the held-out quarter: the same scenes as the folder's default
split, maskrec.data.scenes.split_scenes). OUT/val: the validation scenes alone, all as test. A checkpoint
trains on trainval (its crops are a maskrec dataset), picks its threshold on val (training data it
never trained on), and is reported on trainval's test scenes, never tuned on.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maskrec import faces
from maskrec.data import scenes


def link_folder(out: Path, pairs, lists: dict[str, list[str]]) -> None:
    for sub in ("images", "annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for img, xml in pairs:
        for src, sub in ((img, "images"), (xml, "annotations")):
            dest = out / sub / src.name
            if not dest.exists():
                dest.symlink_to(src.resolve())
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name, names in lists.items():
        (out / "ImageSets" / "Main" / f"{name}.txt").write_text("\n".join(sorted(names)) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--val", type=float, default=0.2, help="share of the train scenes kept for validation")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    pairs = faces.scenes(a.src)
    split = scenes.split_scenes([img.stem for img, _ in pairs])
    train = sorted(n for n, s in split.items() if s == "train")
    random.Random(a.seed).shuffle(train)
    val = set(train[:round(len(train) * a.val)])
    by = {"train": [n for n in train if n not in val], "test": [n for n, s in split.items() if s == "test"]}
    out = Path(a.out)
    link_folder(out / "trainval", pairs, by)
    link_folder(out / "val", [p for p in pairs if p[0].stem in val], {"test": sorted(val)})
    print(f"{out}/trainval: {len(by['train'])} train + {len(by['test'])} test scenes; {out}/val: {len(val)} scenes")


if __name__ == "__main__":
    main()
