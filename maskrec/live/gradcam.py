"""Grad-CAM: which pixels of a face crop drove the classifier's decision (the Recognize page's overlay).

    heat, overlay = grad_cam(rec.predictor, crop)     # heatmap in [0, 1] at the crop's size, RGB overlay
    overlays = saliency(rec, rgb, result)             # one overlay per face of a FrameResult
"""
from __future__ import annotations

import numpy as np
import torch

from maskrec import faces as F
from maskrec.data import batch_to_float
from maskrec.infer.predictor import Predictor
from maskrec.models.build import cam_parts
from maskrec.live.recognize import FrameResult, Recognizer, face_crops

def grad_cam(predictor: Predictor, crop: np.ndarray, target: int | None = None,
             alpha: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of one face crop: (heatmap in [0, 1] at the crop's size, RGB overlay).

    Weights the last convolution's feature maps (a torchvision net's: its ``cam_layer``'s output,
    ResNet-18's 2x2 layer4 maps at 64 px) by the mean gradient of the class score (``target``:
    1 mask / 0 no mask; default the predicted class) before LogSoftmax, keeps the positive part,
    and stretches it over the crop. Needs gradients, so not under inference_mode.
    """
    import cv2  # deferred: drawing and crops pay its import, not every importer of recognize
    features, head = cam_parts(predictor.model)  # a table's last conv, ResNet-18's layer4
    rgb = F.as_rgb(crop)
    x = predictor.preprocess([rgb]).to(predictor.device)
    with torch.enable_grad():
        feats = features(batch_to_float(x)).detach().requires_grad_(True)
        # clone: a later ReLU(inplace=True) must not write into the leaf we take gradients of
        scores = head(feats.clone())  # (1, 2) class scores
        cls = int(scores.argmax(1)) if target is None else int(target)
        # autograd.grad, not backward(): the shared model's parameters get no .grad
        (grad,) = torch.autograd.grad(scores[0, cls], feats)
    w = grad.mean(dim=(2, 3), keepdim=True)                         # (1, C, 1, 1)
    cam = torch.relu((w * feats).sum(1))[0].detach().cpu().numpy()  # (h, w) of the last conv
    cam = cam / cam.max() if cam.max() > 0 else cam
    h, wd = rgb.shape[:2]
    heat = cv2.resize(cam.astype(np.float32), (wd, h), interpolation=cv2.INTER_LINEAR)
    colored = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * heat), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    overlay = cv2.addWeighted(rgb, 1 - alpha, colored, alpha, 0)
    return heat, overlay


def saliency(rec: Recognizer, rgb: np.ndarray, result: FrameResult, side: int = 96) -> list[np.ndarray]:
    """Grad-CAM overlays of every face of ``result`` (squashed to ``side`` px), for display."""
    return [grad_cam(rec.predictor, c)[1] for c in face_crops(rgb, result, side)]
