import numpy as np
import pytest

from maskrec.core.metrics import at_threshold, best_f1_threshold, epoch_metrics, threshold_for_fpr


def test_epoch_metrics_on_a_known_case():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.2, 0.6])
    m = epoch_metrics(y, p, loss=0.5)
    assert m["error"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.75)


def test_auc_is_none_when_a_split_has_one_class():
    assert epoch_metrics(np.array([1, 1]), np.array([0.7, 0.2]), 0.1)["auc"] is None


def test_threshold_tools():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.55, 0.5, 0.8, 0.9])
    t = best_f1_threshold(y, p)
    assert at_threshold(y, p, t)["f1"] >= at_threshold(y, p, 0.5)["f1"]
    t0 = threshold_for_fpr(y, p, 0.0)
    assert at_threshold(y, p, t0)["fp"] == 0
    m = at_threshold(y, p, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 2, 0)


def test_mistakes_most_confident_first():
    from maskrec.core.metrics import mistakes
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.45, 0.9, 0.05, 0.2, 0.8])
    assert mistakes(y, p).tolist() == [2, 1, 0]
    assert mistakes(y, p, threshold=0.9).tolist() == [2, 0, 4, 1]
