"""Face detection that also finds covered (masked) and small faces.

One room per job, the public names re-exported here (``from maskrec import faces as F``):

- ``boxes``: the ``Box`` every detector returns, ``crop_box`` and the Recognizer's crop ``MARGIN``,
  IoU and NMS on ``torchvision.ops``, ``drop_inside`` (a face part boxed inside its face);
- ``common``: the ``Detector`` contract (``detect(rgb) -> [Box]``) and what the families share;
- one file per detector family: ``retinaface`` (photos and live; also five landmarks per face),
  ``blazeface`` (MediaPipe's, through OpenCV's TFLite importer), ``yunet`` and ``mtcnn`` (measured,
  kept for comparison) and ``haar`` (OpenCV's cascade, trained on bare faces, which a mask hides);
- ``registry``: one row per detector (``DETECTORS``: description, availability and why not,
  defaults, the class), ``available()`` and ``make_detector``;
- ``voc``: annotated scenes (``scenes(folder)`` pairs, ``load_voc`` -> ``Truth`` boxes, ``COVERED``);
- ``matching``: ``matched_pairs``, the one rule pairing detections with faces.

Scoring detectors against annotations (``match``, ``summarize``, ``evaluate``) is not part of the
product: it is ``evaluation.detection``. Images are read by ``maskrec.core.imaging`` (``read_rgb`` and
``as_rgb`` are re-exported here).

Use::

    from maskrec.faces import make_detector, crop_box, available, LIVE_DEFAULT

    det = make_detector()                    # PHOTO_DEFAULT, "retinaface": best on photos
    live = make_detector(LIVE_DEFAULT)       # one 640 px pass per frame: for a webcam
    for box in det.detect(rgb):              # rgb: (H, W, 3) uint8; boxes sorted by score
        x0, y0, x1, y1 = crop_box(box, rgb.shape, margin=0.15)
        face = rgb[y0:y1, x0:x1]

``available()`` says which detectors can be built here (name -> "" or why not), for a UI list.
Build a detector once and reuse it per frame: construction loads the model. A detector keeps
buffers between calls, so give each thread its own. Importing this package loads neither cv2 nor
torch: they load when a detector is checked or built, or boxes are measured.
Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box.
"""
from maskrec.core.imaging import as_rgb, read_rgb
from maskrec.faces.blazeface import BlazeFace, model_path, ssd_anchors
from maskrec.faces.boxes import INSIDE, MARGIN, Box, box_iou, crop_box, drop_inside, inside_matrix, iou_matrix, nms
from maskrec.faces.common import Detector
from maskrec.faces.haar import Haar
from maskrec.faces.matching import MATCH_IOU, matched_pairs
from maskrec.faces.mtcnn import MTCNN
from maskrec.faces.registry import (
    DEFAULT,
    DETECTORS,
    LIVE_DEFAULT,
    PHOTO_DEFAULT,
    PHOTO_SIDE,
    Row,
    available,
    make_detector,
)
from maskrec.faces.retinaface import RetinaFace, retinaface_onnx
from maskrec.faces.voc import COVERED, LABELS, Truth, load_voc, scenes
from maskrec.faces.yunet import YuNet

__all__ = ["BlazeFace", "Box", "COVERED", "DEFAULT", "DETECTORS", "Detector", "Haar", "INSIDE", "LABELS",
           "LIVE_DEFAULT", "MARGIN", "MATCH_IOU", "MTCNN", "PHOTO_DEFAULT", "PHOTO_SIDE", "RetinaFace",
           "Row", "Truth", "YuNet", "as_rgb", "available", "box_iou", "crop_box", "drop_inside",
           "inside_matrix", "iou_matrix", "load_voc", "make_detector", "matched_pairs", "model_path", "nms",
           "read_rgb", "retinaface_onnx", "scenes", "ssd_anchors"]
