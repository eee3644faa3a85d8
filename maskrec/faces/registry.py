"""The detector registry: one row per detector, which the CLI's ``--detector``, the Recognize page
and ``bench/detectors.py`` all read (name, description, availability and why not, defaults, the
class that builds it). Every model ships inside a pip package; nothing is downloaded at run time
(requirements-extra.txt says which).

    det = make_detector()                    # PHOTO_DEFAULT, "retinaface": best on photos
    live = make_detector(LIVE_DEFAULT)       # one 640 px pass per frame: for a webcam
    available()                              # {name: "" or why it cannot be built here}
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

from maskrec.faces import blazeface, haar, mtcnn, retinaface, yunet
from maskrec.faces.blazeface import BlazeFace
from maskrec.faces.common import Detector, opencv
from maskrec.faces.haar import Haar
from maskrec.faces.mtcnn import MTCNN
from maskrec.faces.retinaface import RetinaFace
from maskrec.faces.yunet import YuNet

# The registry rows chosen for photos and for a live webcam (bench/detectors.py, docs/guide.md: Measured
# results); DEFAULT, for callers that name none, is the photo one.
PHOTO_DEFAULT = "retinaface"
LIVE_DEFAULT = "retinaface-fast"
DEFAULT = PHOTO_DEFAULT
# The longest side, at least, that a photo to recognise is decoded at (``imaging.open_rgb(src,
# draft=PHOTO_SIDE)``: a 108 MP 12000x9000 JPEG comes out 3000x2250). The photo detector looks at
# no more (RetinaFace's ``detail_side`` in the "retinaface" row), so a larger decode would add
# time, not faces.
PHOTO_SIDE = 2048
# The longest side the photo detector sees a whole photo at: a 400 px street scene enlarged 2.25x,
# a larger photo shrunk to it (its faces then fit RetinaFace's 16-512 px anchors); a photo larger
# than this is also seen at its own size, for small faces (bench/photo_scale.py, issue 34).
PHOTO_WORK_SIDE = 900


class Row(NamedTuple):
    """One detector: what the CLI's ``--detector``, the Recognize page and bench/detectors.py list."""
    name: str
    description: str
    detector: Callable[..., Detector]  # (name, **settings) -> a built detector (loads its model)
    why_not: Callable[[], str]         # "" when it can be built here, else why not
    defaults: Mapping[str, object] = MappingProxyType({})  # this row's settings, which keywords override

    def factory(self, **kw) -> Detector:
        """Build this row's detector: its defaults, overridden by ``kw``."""
        return self.detector(self.name, **{**self.defaults, **kw})


def _row(name, description, detector, why_not, **defaults) -> Row:
    return Row(name, description, detector, why_not, MappingProxyType(defaults))


# Settings from bench/detectors.py on the 200 dev scenes (docs/guide.md, Measured results, has the sweep).
# retinaface: 2.25x rather than 2x finds 11 faces of maksssksksss158's 14, not 9, at the same
# precision; score 0.65 rather than 0.6 keeps precision at 0.95 (0.94 at 0.6). Its whole-photo pass
# of at most 900 px and its detail pass from bench/photo_scale.py on the validation scenes enlarged
# 2x and 3x: enlarging every photo 2.25x up to 2048 px, as before, made large faces too big for its
# anchors (precision 0.83 and 0.76, against 0.94 and 0.89; recall 0.915 and 0.871, against 0.905
# and 0.907); 640 or 1280 px, a detail pass without its 128 px limit or a score of 0.6-0.75 did no
# better. retinaface-fast sees small faces at fewer pixels, so it keeps more of them, at 0.5 (0.65:
# recall 0.968, not 0.979). BlazeFace full-range at 0.4 rather than MediaPipe's 0.5: masked faces
# score lower.
_ROWS = (
    _row("retinaface", "RetinaFace MobileNet-0.25 on the photo enlarged 2.25x up to 900 px (a larger "
         "one shrunk to it and also seen at its own size, up to 2048 px, for small faces): best on "
         "photos, finds most faces of 16-32 px and half of the smaller; one or two model passes",
         RetinaFace, retinaface.why_not, score=0.65, upscale=2.25, max_side=PHOTO_WORK_SIDE,
         detail_side=PHOTO_SIDE),
    _row("retinaface-fast", "RetinaFace MobileNet-0.25, one pass on the frame scaled to 640 px on "
         "its longest side (a webcam's size): for live video; misses more faces under ~16 px",
         RetinaFace, retinaface.why_not, score=0.5, upscale=4.0, max_side=640),
    _row("blazeface-tiles", "BlazeFace full-range on the frame plus overlapping tiles: "
         "~4-10 model passes per photo",
         BlazeFace, blazeface.why_not(blazeface.FULL), spec=blazeface.FULL, score=0.4, tiles=True),
    _row("blazeface-full", "BlazeFace full-range, one pass on the whole frame",
         BlazeFace, blazeface.why_not(blazeface.FULL), spec=blazeface.FULL, score=0.4),
    _row("blazeface-short", "BlazeFace short-range (selfie distance, faces within ~2 m): fastest",
         BlazeFace, blazeface.why_not(blazeface.SHORT), spec=blazeface.SHORT),
    _row("yunet", "YuNet (libfacedetection) on the frame enlarged 2x: many small faces, "
         "more false alarms, slower than RetinaFace",
         YuNet, yunet.why_not),
    _row("mtcnn", "MTCNN (facenet-pytorch), faces from 12 px: classic cascade, slow on crowds",
         MTCNN, mtcnn.why_not),
    _row("haar", "OpenCV Haar frontal-face cascade: classic baseline, misses most masked faces",
         Haar, haar.why_not),
)
DETECTORS: Mapping[str, Row] = MappingProxyType({r.name: r for r in _ROWS})


def available() -> dict[str, str]:
    """Detector name -> "" when it can be built here, else why not (for listing in a UI)."""
    try:
        opencv()
    except ImportError as e:
        return {n: f"OpenCV is not installed ({e})" for n in DETECTORS}
    return {n: row.why_not() for n, row in DETECTORS.items()}


def make_detector(name: str = DEFAULT, threads: int | None = None, **kw) -> Detector:
    """Build a detector by registry name (loads its model: build once, call ``detect`` per frame).

    threads: if given, ``cv2.setNumThreads(threads)`` (process-wide; RetinaFace's onnxruntime
    session takes the same count). OpenCV's default uses every core; a web app serving one user or a
    machine shared with training may want 1. Other keywords go to the detector (e.g. ``score=0.5``,
    ``tile=256`` for BlazeFace, ``upscale=2`` for RetinaFace).
    """
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    if threads is not None:
        opencv().setNumThreads(int(threads))
    return DETECTORS[name].factory(**kw)
