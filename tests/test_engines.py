"""Every inference engine computes the shipped checkpoints' P(mask): the fp32 ones to within 1e-3 of
eager torch, the bf16 and int8 ones to the test split's F1 (dev data) and to a looser check on demo
faces (a fresh clone, no dev data). Then the default choice and the thread policy."""
from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import torch

from maskrec import engines
from maskrec.data import discover, load_split
from maskrec.inference import Predictor
from maskrec.metrics import at_threshold
from tests.conftest import REPO

NETS = ("net1", "net2")
# Parametrised over the engines that run here, so a CPU without bf16 has no torch-bf16 cases rather
# than skipped ones (a skip fails CI).
HERE = engines.available()
APPROX = [n for n in HERE if not engines.ENGINES[n].exact]


@functools.lru_cache(maxsize=None)
def _predictor(net: str, engine: str) -> Predictor:
    # built once per session: torchscript and int8 calibration take seconds
    return Predictor.load(REPO / "checkpoints" / f"{net}.pt", engine=engine)


def _scores(net: str, engine: str, data) -> tuple[np.ndarray, np.ndarray, float]:
    pred = _predictor(net, engine)
    X, y, _ = load_split(discover(data), "test", pred.input_size)
    p = np.concatenate([pred.predict_tensor(X[i:i + 256]) for i in range(0, len(X), 256)])
    return y.numpy(), p, pred.threshold


@pytest.mark.parametrize("engine", [n for n in HERE if engines.ENGINES[n].exact])
@pytest.mark.parametrize("net", NETS)
def test_fp32_engines_give_the_checkpoints_probabilities(net, engine, demo_dir):
    _, want, _ = _scores(net, "torch", demo_dir)
    _, got, _ = _scores(net, engine, demo_dir)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= engines.EXACT_TOL


@pytest.mark.parametrize("engine", APPROX)
@pytest.mark.parametrize("net", NETS)
def test_approximate_engines_keep_the_labels_on_demo_faces(net, engine, demo_dir):
    """120 demo test faces: one flipped label moves F1 by ~0.01, so this only catches a broken engine
    (wrong scaling, wrong channel order: about half the labels flip); the dev split holds F1 tight."""
    y, want, thr = _scores(net, "torch", demo_dir)
    _, got, _ = _scores(net, engine, demo_dir)
    assert np.abs(got - want).max() <= 0.25
    assert np.mean((got >= thr) == (want >= thr)) >= 0.97
    assert abs(at_threshold(y, got, thr)["f1"] - at_threshold(y, want, thr)["f1"]) <= 0.03


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
@pytest.mark.parametrize("engine", APPROX)
@pytest.mark.parametrize("net", NETS)
def test_approximate_engines_keep_f1_on_the_dev_test_split(net, engine, dev_data):
    y, want, thr = _scores(net, "torch", dev_data)
    _, got, _ = _scores(net, engine, dev_data)
    assert len(y) == 986
    assert abs(at_threshold(y, got, thr)["f1"] - at_threshold(y, want, thr)["f1"]) <= 0.003


@pytest.mark.parametrize("engine", HERE)
def test_uint8_and_float_input_agree_and_empty_is_empty(engine):
    eng = _predictor("net1", engine).engine
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(eng(x), eng(x.float() / 255))
    assert eng(x[:0]).shape == (0,)
    one_by_one = np.concatenate([eng(x[i:i + 1]) for i in range(5)])
    assert np.abs(one_by_one - eng(x)).max() <= 1e-5  # a face's P(mask) does not depend on its batch


@pytest.mark.parametrize("engine", HERE)
def test_face_crops_through_predict_proba_match_eager_torch(engine):
    """The live path: RGB crops of any size -> to_input -> a permuted (B, 3, S, S) view -> engine."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8) for h, w in rng.integers(20, 120, (6, 2))]
    want = _predictor("net2", "torch").predict_proba(crops)
    got = _predictor("net2", engine).predict_proba(crops, threads=1)
    tol = engines.EXACT_TOL if engines.ENGINES[engine].exact else 0.25
    assert np.abs(got - want).max() <= tol


def _faces(n: int = 5, size: int = 32) -> torch.Tensor:
    # (n, 3, S, S) uint8 noise: a mirror changes a noise face's P(mask), as it would not a symmetric one
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("engine", HERE)
def test_flip_tta_averages_each_face_with_its_mirror(engine):
    eng = _predictor("net1", engine).engine
    x = _faces()
    plain, mirrored = eng(x), eng(x.flip(3))
    got = eng(x, tta=True)
    assert got.shape == (5,) and got.dtype == np.float32
    assert np.abs(got - (plain + mirrored) / 2).max() <= 1e-5  # the batch-independence tolerance above
    assert np.abs(plain - mirrored).max() > 1e-3  # else the line above could not tell TTA from none
    assert eng(x[:0], tta=True).shape == (0,)


@pytest.mark.parametrize("engine", HERE)
def test_flip_tta_is_one_batch_of_the_faces_then_their_mirrors(engine, monkeypatch):
    eng = _predictor("net1", engine).engine
    calls, real = [], eng._run

    def spy(x, threads):
        calls.append(x.clone())
        return real(x, threads)

    monkeypatch.setattr(eng, "_run", spy)
    x = _faces(3)
    eng(x, tta=True)
    (batch,) = calls
    assert batch.shape == (6, 3, 32, 32)
    assert torch.equal(batch[:3], x.float() / 255) and torch.equal(batch[3:], x.flip(3).float() / 255)


def test_the_predictor_passes_its_tta_setting_to_the_engine():
    from maskrec import inference

    x = _faces(4)
    eng = _predictor("net1", "torch").engine
    off, on = eng(x), eng(x, tta=True)
    assert Predictor.load(REPO / "checkpoints" / "net1.pt", engine="torch").tta is inference.TTA
    pred = Predictor.load(REPO / "checkpoints" / "net1.pt", engine="torch", tta=True)
    assert np.array_equal(pred.predict_tensor(x), on)
    assert np.array_equal(pred.predict_tensor(x, tta=False), off)  # a call may ask otherwise


def test_the_choice_follows_bf16_support_and_measurements():
    fp32_only = ["torch", "torchscript"]
    assert engines.choose(bf16=False, runs_here=fp32_only + ["torch-bf16"]) == "torch"
    assert engines.choose(bf16=True, runs_here=fp32_only + ["torch-bf16"]) == "torch-bf16"
    assert engines.choose(bf16=True, runs_here=fp32_only) == "torch"
    assert engines.choose(bf16=False, runs_here=fp32_only + ["onnx"]) == "onnx"
    everything = list(engines.ENGINES)
    assert engines.choose(bf16=False, runs_here=everything) == engines.PREFERENCE[False][0]
    assert engines.choose(bf16=True, runs_here=everything) == engines.PREFERENCE[True][0]
    # measured: the fastest eligible engine wins; torchscript is not eligible however fast
    t = {"torch": 3.0, "onnx": 2.0, "torch-bf16": 1.0, "torchscript": 0.1}
    assert engines.choose(bf16=True, runs_here=everything, timings=t) == "torch-bf16"
    assert engines.choose(bf16=False, runs_here=everything, timings=t) == "onnx"
    assert engines.choose(device="cuda") == "torch"
    assert engines.choose() in HERE and engines.ENGINES[engines.choose()].default_ok


def test_predictor_runs_the_chosen_engine_and_rejects_one_that_cannot_run():
    pred = Predictor.load(REPO / "checkpoints" / "net1.pt")
    assert pred.engine_name == engines.choose() and pred.engine.name == pred.engine_name
    with pytest.raises(ValueError, match="warp"):
        Predictor.load(REPO / "checkpoints" / "net1.pt", engine="warp")
    for name, spec in engines.ENGINES.items():
        if not spec.available():
            with pytest.raises(ValueError, match=re.escape(spec.why_not())):
                Predictor.load(REPO / "checkpoints" / "net1.pt", engine=name)


@pytest.mark.skipif("onnx-int8" not in HERE, reason="onnxruntime is not installed")
def test_the_int8_graph_is_calibrated_once_then_read_from_the_cache(isolated_home):
    pred = Predictor.load(REPO / "checkpoints" / "net1.pt", engine="torch")
    first = engines.make("onnx-int8", pred.model, 32)
    (cached,) = (isolated_home / "cache" / "engines").glob("*.int8.onnx")
    assert cached.read_bytes() == first.graph
    cached.write_bytes(b"not a graph")  # proves the second engine reads the file rather than re-calibrating
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):
        engines.make("onnx-int8", pred.model, 32)(torch.zeros(1, 3, 32, 32))


def test_threads_follow_the_work_and_the_idle_cores():
    # a frame's few faces: one thread, however idle the machine
    assert engines.threads_for(4, 32, load=0.0, cpus=16) == 1
    assert engines.threads_for(2, 64, load=0.0, cpus=16) == 1
    # a big batch on an idle machine spreads over the cores, up to one per PIXELS_PER_THREAD
    assert engines.threads_for(8, 64, load=0.0, cpus=16) == 2
    assert engines.threads_for(512, 32, load=0.0, cpus=16) == 16
    assert engines.threads_for(512, 32, load=13.5, cpus=16) == 2
    # training beside us holds both cores of a 2-core machine: one thread, not a fight for a core
    assert engines.threads_for(512, 32, load=2.0, cpus=2) == 1
    assert engines.threads_for(512, 32, load=0.3, cpus=2) == 1
    assert engines.threads_for(512, 32, load=0.0, cpus=2) == 2
