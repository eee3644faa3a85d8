"""Annotated scenes (PASCAL VOC): the face boxes and labels a folder of photos comes with.

A scenes folder holds ``images/`` and ``annotations/`` (one ``.xml`` per photo, ``<object><name>``
and ``<bndbox>`` per face). ``scenes(folder)`` pairs them, ``load_voc`` reads one file's faces.
Scene crops (``maskrec.data.scenes``) train on them; ``evaluation`` scores detectors against them.

    for img, xml in scenes("photos"):
        truths = load_voc(xml)        # [Truth(x0, y0, x1, y1, label)], exclusive x1/y1
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

LABELS = ("with_mask", "without_mask", "mask_weared_incorrect")
# Scene labels -> the classifier's label (1 = covered): a mask below the nose still covers.
COVERED = {"with_mask": 1, "mask_weared_incorrect": 1, "without_mask": 0}


class Truth(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int
    label: str


def load_voc(xml_path: str | Path) -> list[Truth]:
    """Face boxes of one PASCAL VOC annotation file (exclusive x1/y1 = VOC xmax/ymax)."""
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        v = [int(round(float(bb.findtext(k)))) for k in ("xmin", "ymin", "xmax", "ymax")]
        out.append(Truth(*v, (obj.findtext("name") or "").strip()))
    return out


def scenes(folder: str | Path) -> list[tuple[Path, Path]]:
    """(image, annotation) pairs of a VOC scenes folder (``images/`` + ``annotations/``)."""
    folder = Path(folder)
    pairs = []
    for xml in sorted((folder / "annotations").glob("*.xml")):
        for ext in (".jpg", ".png", ".jpeg"):
            img = folder / "images" / (xml.stem + ext)
            if img.is_file():
                pairs.append((img, xml))
                break
    return pairs

