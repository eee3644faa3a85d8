"""Annotated scenes (PASCAL VOC) as a dataset of face crops: the faces the Recognize page classifies.

A folder holding ``images/`` and ``annotations/`` (one VOC ``.xml`` per photo, ``<object><name>`` and
``<bndbox>`` per face) is cut once into face crops in the report's layout, under the cache, and from
then on is a dataset like any other: ``data.discover`` does it, so the Dataset page, the trainer and the
CLI take such a folder as they are, and users with photos and boxes never cut crops themselves.

- **The scenes are split, not the faces**: the lists in ``ImageSets/Main/{train,test,val}.txt`` (the VOC
  convention; val counts as test, like a ``val/`` folder) when the folder has them; else the project's
  **declared split** (``scene_split.json``, issue 34: train / val / test for each of the 853 scenes of
  facemask-scenes-dev + facemask-scenes-more, written by ``bench/declare_scene_split.py``) when it names
  every scene of the folder; else a seeded quarter of the scenes goes to test. No face of a test scene,
  nor its background, is seen in training. Faces of a declared **validation** scene are cut into
  ``train/`` like training faces (the detector's framing) but without jittered views, and
  ``crops.json`` lists their scenes under ``"val_scenes"``: ``validation.carve`` always puts them in
  the validation split, so every run that validates judges on the same scenes.
- **Crops are cut as the Recognizer cuts a detector's box**: the box grown by ``faces.MARGIN`` on
  each side. In a training scene the box is the photo detector's own box for that face (the detection
  ``faces.matched_pairs`` pairs with it, IoU >= 0.4, the rule that scoring uses too), the annotated box
  where the detector missed the face,
  so the net learns the framing the Recognize page will show it (RetinaFace's boxes sit differently from
  annotators' boxes). A test scene gives one plain crop of each annotated box, whatever the detector finds.
- **Each annotated face is one crop, one dataset item**: the scan, the Dataset page and data health
  count the faces in the folder. Jitter is augmentation: each training face also gets ``JITTER`` views
  with its box moved and scaled a little, kept apart in ``views/`` and listed in ``crops.json`` under
  ``"views"`` as belonging to their face; ``discover`` hands them over as ``Dataset.views``, which only
  the trainer reads (``data.Decoded.train_views``: one framing per face drawn each epoch). Test faces
  get none.
- Labels: ``with_mask`` and ``mask_weared_incorrect`` (a mask below the nose is still a face cover) are
  1, ``without_mask`` is 0 (``faces.COVERED``); other names are left out and counted.

    crops_root = crops(Path("photos"))    # <cache>/scene-crops/<key>/{train,test}/<scene>-<k>_<label>.jpg
    training_views(crops_root)            # {face crop: (views/<scene>-<k>j1_<label>.jpg, ...)}

``maskrec.data`` calls this module when ``discover`` meets such a folder; it stands below the data
package (on ``faces``, ``imaging`` and ``errors``), so the call runs one way.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from maskrec import faces
from maskrec.core.atomic import atomic_write_text, building, locked_dir
from maskrec.config import cache_dir
from maskrec.core.errors import BadImage, DataError
from maskrec.faces import COVERED, MARGIN, crop_box, load_voc, make_detector, matched_pairs, read_rgb, scenes

# bump when the cutting rule changes: old crops are then cut again. 3: jittered copies are views of
# their face in views/, no longer crops of their own in train/. Not bumped when the detector's box
# for a face came to be chosen by faces.matched_pairs (best score first) instead of best overlap
# first: on the 200 dev scenes both rules pick the same box for all 979 faces.
CROPS_VERSION = 6  # 5: declared validation scenes (val_scenes); 6: the photo detector chooses its scale (issue 34)
# The project's declared train/val/test split of the 853 scenes (issue 34); see the module docstring.
DECLARED_SPLIT = Path(__file__).with_name("scene_split.json")
TEST_FRACTION, SPLIT_SEED = 0.25, 0
JITTER = 2  # extra views per training face (augmentation, not dataset items)
# A detector's box against the annotator's, as a share of the box side: BlazeFace's boxes are
# tighter (eyes to mouth) and sit a little off-centre on turned heads.
SHIFT, SCALE = 0.08, (0.85, 1.1)
MIN_SIDE = 12  # px, shorter side of the annotated box: smaller faces carry no usable pixels
QUALITY = 95


def is_scene_face(path) -> bool:
    """A face crop cut from an annotated scene (by ``crops``), not a web crop."""
    return "scene-crops" in Path(path).parts


def is_voc(folder: Path) -> bool:
    return (folder / "annotations").is_dir() and (folder / "images").is_dir() \
        and any((folder / "annotations").glob("*.xml"))


def declared() -> dict[str, str]:
    """The declared split: scene name -> "train" | "val" | "test" ({} when the file is missing)."""
    try:
        return json.loads(DECLARED_SPLIT.read_text())["scenes"]
    except (OSError, ValueError, KeyError):
        return {}


def _is_declared(folder: Path, names: list[str]) -> bool:
    """The folder's split is the declared one (no lists of its own; the declared split names all its scenes)."""
    sets = folder / "ImageSets" / "Main"
    split = declared()
    return not (sets.is_dir() and any(sets.glob("*.txt"))) and bool(names) and bool(split) \
        and all(n in split for n in names)


def _listed(folder: Path, names: list[str] | None = None) -> dict[str, str] | None:
    """scene name -> split from ImageSets/Main/*.txt; else the declared split when it names every
    scene of the folder (``names``); else None."""
    sets = folder / "ImageSets" / "Main"
    out = {}
    for split, name in (("train", "train"), ("test", "test"), ("test", "val")):
        f = sets / f"{name}.txt"
        if f.is_file():
            for line in f.read_text().split():
                out[line.strip()] = split
    if out:
        return out
    split = declared()
    if names and split and all(n in split for n in names):
        return {n: split[n] for n in names}
    return None


def split_scenes(names: list[str], listed: dict[str, str] | None = None,
                 fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> dict[str, str]:
    """scene name -> "train" | "test" (| "val" from the declared split): the listed split, else a
    seeded share of the scenes to test (scenes not in a list are left out: a list says what belongs where)."""
    if listed is not None:
        return {n: listed[n] for n in names if n in listed}
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * fraction)
    return {n: ("test" if i < n_test else "train") for i, n in enumerate(order)}


def _boxes(rng: np.random.Generator, box, copies: int) -> list[tuple[float, float, float, float]]:
    """The annotated box, then ``copies`` moved and scaled as a detector's box might be."""
    x0, y0, x1, y1 = box
    out = [(x0, y0, x1, y1)]
    w, h = x1 - x0, y1 - y0
    for _ in range(copies):
        s = rng.uniform(*SCALE)
        cx = (x0 + x1) / 2 + rng.uniform(-SHIFT, SHIFT) * w
        cy = (y0 + y1) / 2 + rng.uniform(-SHIFT, SHIFT) * h
        out.append((cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2))
    return out


def _boxes_from() -> str:
    """The detector whose boxes training crops are cut from: the photo default, or "annotations" where
    it cannot run here (the crops then come from the annotated boxes alone; crops.json says which).
    Part of the cache key, so crops are cut again when it changes."""
    return "annotations" if faces.available().get(faces.PHOTO_DEFAULT, "unknown") else faces.PHOTO_DEFAULT


def _detected_boxes(detector, rgb: np.ndarray, truths) -> list:
    """Per annotated face, the detector's box for it (the detection ``faces.matched_pairs`` pairs it
    with: greedy, best score first, IoU >= ``faces.MATCH_IOU``), else the annotated box."""
    boxes = [(t.x0, t.y0, t.x1, t.y1) for t in truths]
    dets = detector.detect(rgb) if detector is not None and truths else []
    for d, t in matched_pairs(dets, boxes):
        boxes[t] = tuple(dets[d][:4])
    return boxes


def _key(folder: Path, pairs, boxes_from: str) -> str:
    h = hashlib.sha1(f"{folder.resolve()}|v{CROPS_VERSION}|{JITTER}|{SHIFT}|{SCALE}|{MIN_SIDE}|{boxes_from}".encode())
    sets = folder / "ImageSets" / "Main"
    for f in sorted(sets.glob("*.txt")) if sets.is_dir() else []:
        h.update(f.read_bytes())
    h.update(json.dumps(_listed(folder, [img.stem for img, _ in pairs]), sort_keys=True).encode())
    for img, xml in pairs:
        for f in (img, xml):
            st = f.stat()
            h.update(f"{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def crops(folder: Path, progress=None) -> Path:
    """The crop dataset of a VOC scenes folder (cut on first use, then reused while the scenes, their
    annotations and split lists are unchanged, and while every crop it lists is still there). Cut once
    however many trainings ask at the same time (``atomic.locked_dir``). Raises DataError when no face
    can be cut."""
    pairs = scenes(folder)
    boxes_from = _boxes_from()
    out = cache_dir() / "scene-crops" / _key(folder, pairs, boxes_from)
    if _complete(out):
        return out
    with locked_dir(out):
        if _complete(out):  # another process or thread cut it while this one waited
            return out
        with building(out) as tmp:
            _cut(folder, pairs, boxes_from, tmp, progress)
    return out


def _complete(out: Path) -> bool:
    """The cut finished and nothing was deleted from it since: every face and view it counts is there."""
    try:
        info = json.loads((out / "crops.json").read_text())
    except (OSError, ValueError):
        return False
    for part in ("train", "test"):
        want = sum(info.get("crops", {}).get(part, {}).values())
        if want and sum(1 for _ in (out / part).glob("*.jpg")) != want:
            return False
    return sum(1 for _ in (out / "views").glob("*.jpg")) == info.get("n_views", 0)


def _cut(folder: Path, pairs, boxes_from: str, tmp: Path, progress) -> None:
    detector = None if boxes_from == "annotations" else make_detector(boxes_from)
    names = [img.stem for img, _ in pairs]
    split = split_scenes(names, _listed(folder, names))
    counts = {"train": {0: 0, 1: 0}, "test": {0: 0, 1: 0}}
    counts_val = {0: 0, 1: 0}  # of counts["train"]: the faces of declared validation scenes
    left_out: dict[str, int] = {}
    from_detector = 0  # training faces whose crop came from the detector's box
    views: dict[str, list[str]] = {}  # training face crop -> its jittered views, paths relative to out
    for k, (img_path, xml) in enumerate(pairs):
        part = split.get(img_path.stem)
        if part is not None:
            try:
                rgb = read_rgb(img_path)  # the file's own pixels: VOC boxes are given in them
            except (BadImage, OSError, ValueError):
                left_out["unreadable scene"] = left_out.get("unreadable scene", 0) + 1
                rgb = None
            if rgb is not None:
                rng = np.random.default_rng(k)  # per scene, so the crops do not depend on the scene order
                truths = load_voc(xml)
                # validation faces are framed as training faces are (what the Recognize page shows),
                # test faces by their annotated boxes alone
                seen = _detected_boxes(detector, rgb, truths) if part != "test" else [t[:4] for t in truths]
                folder_part = "test" if part == "test" else "train"
                for j, (t, box0) in enumerate(zip(truths, seen)):
                    label = COVERED.get(t.label)
                    if label is None or min(t.x1 - t.x0, t.y1 - t.y0) < MIN_SIDE:
                        why = f"label {t.label!r}" if label is None else f"face under {MIN_SIDE} px"
                        left_out[why] = left_out.get(why, 0) + 1
                        continue
                    if part != "test":
                        from_detector += box0 != tuple(t[:4])
                    face = f"{img_path.stem}-{j:03d}"
                    for c, box in enumerate(_boxes(rng, box0, JITTER if part == "train" else 0)):
                        x0, y0, x1, y1 = crop_box(box, rgb.shape, MARGIN)
                        if x1 - x0 < 2 or y1 - y0 < 2:
                            if c == 0:  # the face itself is off the photo: no item, hence no views
                                left_out["box outside the photo"] = left_out.get("box outside the photo", 0) + 1
                                break
                            continue
                        # the face in its split's folder; its jittered views apart, named after it so
                        # their scene reads back from the name as the face's does
                        rel = f"{folder_part}/{face}_{label}.jpg" if c == 0 else f"views/{face}j{c}_{label}.jpg"
                        dest = tmp / rel
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(rgb[y0:y1, x0:x1]).save(dest, quality=QUALITY)
                        if c == 0:
                            counts[folder_part][label] += 1
                            if part == "val":
                                counts_val[label] += 1
                        else:
                            views.setdefault(f"{folder_part}/{face}_{label}.jpg", []).append(rel)
        if progress:
            progress(k + 1, len(pairs))
    if not any(sum(c.values()) for c in counts.values()):
        raise DataError(f"{folder}: no face box of a known label ({', '.join(COVERED)}) "
                        f"of at least {MIN_SIDE} px in its annotations")
    atomic_write_text(tmp / "crops.json", json.dumps({
        "source": str(folder.resolve()),
        "scenes": {s: sum(1 for v in split.values() if v == s) for s in ("train", "val", "test")},
        "test_scenes": sorted(n for n, v in split.items() if v == "test"),
        # present (maybe empty) when the split is the declared one: validation.carve then draws none of its faces
        **({"val_scenes": sorted(n for n, v in split.items() if v == "val"), "val_crops": counts_val}
           if _is_declared(folder, names) else {}),
        "crops": counts, "left_out": left_out, "margin": MARGIN, "jitter": JITTER, "version": CROPS_VERSION,
        "train_boxes_from": boxes_from, "train_faces_boxed_by_detector": from_detector,
        "n_views": sum(len(v) for v in views.values()), "views": views}, indent=1))
    # building() renames tmp to the cache folder: whole or not at all, a half-cut folder is never picked up


def held_out_scenes(folder: Path) -> list[str]:
    """Names of the scenes the crop dataset of folder holds out for test."""
    info = json.loads((crops(folder) / "crops.json").read_text())
    return info["test_scenes"]


def training_views(crops_root: Path) -> dict[Path, tuple[Path, ...]]:
    """{training face crop: its jittered views} of a crop dataset that ``crops`` cut (paths under
    crops_root); {} for a folder without views."""
    try:
        listed = json.loads((crops_root / "crops.json").read_text()).get("views", {})
    except (OSError, ValueError):
        return {}
    return {crops_root / face: tuple(crops_root / v for v in vs) for face, vs in listed.items()}
