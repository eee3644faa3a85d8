"""Scores -> the report's per-epoch numbers (loss, error, ROC AUC, F1) and threshold tools.

Positive class = covered face (label 1); ``p`` is always P(mask). AUC is None (with a warning in
the record) when a split holds one class only, since it is undefined there.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_curve, roc_auc_score, roc_curve


def auc_or_none(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, p))


def epoch_metrics(y: np.ndarray, p: np.ndarray, loss: float, threshold: float = 0.5) -> dict:
    """loss, error (1 - accuracy), auc, f1 at the threshold."""
    y = np.asarray(y)
    pred = (np.asarray(p) >= threshold).astype(int)
    return {
        "loss": float(loss),
        "error": float((pred != y).mean()) if len(y) else math.nan,
        "auc": auc_or_none(y, p),
        "f1": float(f1_score(y, pred, zero_division=0)),
    }


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    n = len(y)
    # rows: true 0, 1; columns: predicted 0, 1 (scikit-learn refuses an empty split)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel()) if n else (0, 0, 0, 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": float(threshold), "n": n, "accuracy": (tp + tn) / n if n else math.nan,
            "precision": precision, "recall": recall, "f1": f1, "auc": auc_or_none(y, p),
            "fpr": fp / (fp + tn) if fp + tn else 0.0, "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def curves(y: np.ndarray, p: np.ndarray) -> dict:
    """ROC and precision-recall curves plus F1 at every candidate threshold (for plots)."""
    fpr, tpr, roc_thr = roc_curve(y, p)
    prec, rec, pr_thr = precision_recall_curve(y, p)
    f1 = np.where(prec[:-1] + rec[:-1] > 0, 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12), 0)
    return {"fpr": fpr, "tpr": tpr, "roc_thresholds": roc_thr,
            "precision": prec, "recall": rec, "pr_thresholds": pr_thr, "f1": f1}


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    c = curves(y, p)
    if len(c["f1"]) == 0:
        return 0.5
    return float(c["pr_thresholds"][int(np.argmax(c["f1"]))])


def threshold_for_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float) -> float:
    """Lowest threshold whose false-positive rate (bare faces called masked) stays <= max_fpr
    (every threshold: roc_curve's default drops some, and the lowest under the cap can be one)."""
    fpr, _, thr = roc_curve(y, p, drop_intermediate=False)
    ok = np.where(fpr <= max_fpr)[0]
    return float(min(1.0, thr[ok[-1]])) if len(ok) else 1.0


def in_band(p, band: tuple[float, float] | None) -> np.ndarray:
    """Which P(mask) values ``p`` a band labels unsure (``[lo, hi)``; all False without a band)."""
    p = np.asarray(p, float)
    return (p >= band[0]) & (p < band[1]) if band else np.zeros(len(p), bool)


def mistakes(y: np.ndarray, p: np.ndarray, threshold: float = 0.5,
             band: tuple[float, float] | None = None) -> np.ndarray:
    """Indices of the wrongly classified images, most confidently wrong first (they teach the most);
    those inside an unsure ``band`` are neither right nor wrong, so left out."""
    y, p = np.asarray(y), np.asarray(p)
    wrong = np.nonzero(((p >= threshold).astype(int) != y) & ~in_band(p, band))[0]
    return wrong[np.argsort(-np.abs(p[wrong] - threshold), kind="stable")]
