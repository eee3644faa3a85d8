"""Write the project's declared scene-level split of the 853 annotated scenes (issue 34).

    python bench/declare_scene_split.py ../shared/datasets/facemask-scenes-dev ../shared/datasets/facemask-scenes-more

Writes ``maskrec/data/scene_split.json``: every scene name -> "train" | "val" | "test". ``maskrec.data.scenes``
applies it to any VOC folder whose scenes it all names, so every run, the threshold rule, the bench
and the model card use the same split. The rule (seeded, fixed before any figure on it was seen):

- facemask-scenes-dev: its default split as before (``scenes.split_scenes``: the seeded quarter, 50
  scenes, to test; the other 150 to train), so its held-out scenes stay the ones every earlier
  checkpoint was judged on and none of them was trained on;
- facemask-scenes-more (never trained on before): sorted, shuffled with ``SEED``; scenes go to test
  until test holds ``TARGET_BARE`` bare faces of at least ``scenes.MIN_SIDE`` px (counting dev's 50),
  then to validation until it holds as many, the rest to train.

So validation and test are scenes that no shipped checkpoint of earlier rounds trained on.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maskrec import faces
from maskrec.data import scenes

SEED = 34
TARGET_BARE = 160  # each of val and test: a 3% rate is ~5 faces, its Wilson interval about +-2.5 points


def bare(xml: Path) -> int:
    return sum(1 for t in faces.load_voc(xml) if faces.COVERED.get(t.label) == 0
               and min(t.x1 - t.x0, t.y1 - t.y0) >= scenes.MIN_SIDE)


def declare(dev: Path, more: Path) -> dict[str, str]:
    dev_pairs, more_pairs = faces.scenes(dev), faces.scenes(more)
    out = dict(scenes.split_scenes([img.stem for img, _ in dev_pairs]))
    n_bare = {"test": sum(bare(x) for img, x in dev_pairs if out[img.stem] == "test"), "val": 0}
    order = sorted(more_pairs, key=lambda p: p[0].stem)
    random.Random(SEED).shuffle(order)
    for img, xml in order:
        part = next((p for p in ("test", "val") if n_bare[p] < TARGET_BARE), "train")
        out[img.stem] = part
        if part != "train":
            n_bare[part] += bare(xml)
    return dict(sorted(out.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dev")
    ap.add_argument("more")
    ap.add_argument("--out", default=str(scenes.DECLARED_SPLIT))
    a = ap.parse_args()
    split = declare(Path(a.dev), Path(a.more))
    doc = {"about": "issue 34's declared scene-level split of the 853 scenes of facemask-scenes-dev + "
                    "facemask-scenes-more; written by bench/declare_scene_split.py (its docstring gives the rule)",
           "seed": SEED, "target_bare": TARGET_BARE, "min_side": scenes.MIN_SIDE, "scenes": split}
    Path(a.out).write_text(json.dumps(doc, indent=0) + "\n")
    counts: dict[str, int] = {}
    for v in split.values():
        counts[v] = counts.get(v, 0) + 1
    print(a.out, counts)


if __name__ == "__main__":
    main()
