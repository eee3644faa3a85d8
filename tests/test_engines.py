"""Every inference engine computes the shipped checkpoints' P(mask): the fp32 ones to within 1e-3 of
eager torch, the bf16 and int8 ones to the test split's F1 (dev data) and to a looser check on demo
faces (a fresh clone, no dev data). Then int8's calibration faces, the measured default (the probe
and its cache), what a Predictor reports of its engine, and the thread policy."""
from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
import torch

from maskrec.infer import calibration
from maskrec.models import checkpoint
from maskrec.infer import probe as engine_probe
from maskrec.infer import engines
from maskrec.infer import predictor as inference
from maskrec.__main__ import main
from maskrec.data import discover, load_split
from maskrec.infer.predictor import Predictor, describe_engine
from maskrec.core.metrics import at_threshold
from maskrec.models.build import REGISTRY, build, spec
from tests.conftest import REPO

# Net2 runs in the whole suite (CI); the fast subset checks each engine on Net1 (issue 19: it must stay fast)
NETS = ("net1", pytest.param("net2", marks=pytest.mark.slow))
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
@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_fp32_engines_give_the_checkpoints_probabilities(net, engine, demo_dir):
    _, want, _ = _scores(net, "torch", demo_dir)
    _, got, _ = _scores(net, engine, demo_dir)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= engines.EXACT_TOL


@pytest.mark.parametrize("engine", HERE)
@pytest.mark.parametrize("net", [n if n == "net1" else pytest.param(n, marks=pytest.mark.slow) for n in REGISTRY])
def test_every_engine_builds_every_net_of_the_registry(net, engine, tmp_path):
    """Each row of the registry (a table's nn.Sequential, a torchvision ResNet) exports, traces and
    quantises: seeded random weights, a checkpoint of its own, P(mask) of eager torch's (the fp32
    engines to EXACT_TOL; bf16 and int8, whose accuracy the shipped nets' tests hold, loosely)."""
    torch.manual_seed(0)
    model, size = build(net), spec(net).input_size
    path = tmp_path / f"{net}.pt"
    checkpoint.save(path, {"net": net, "input_size": size, "classes": ["no_mask", "mask"], "threshold": 0.5,
                           "model": model.state_dict(), "config": {}})
    x = _faces(6, size)
    want = Predictor.load(path, engine="torch").predict_tensor(x)
    got = Predictor.load(path, engine=engine).predict_tensor(x)
    assert got.shape == (6,) and np.abs(got - want).max() <= (engines.EXACT_TOL if engines.ENGINES[engine].exact else 0.25)


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
@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
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
    from maskrec.infer import predictor as inference

    x = _faces(4)
    eng = _predictor("net1", "torch").engine
    off, on = eng(x), eng(x, tta=True)
    assert Predictor.load(REPO / "checkpoints" / "net1.pt", engine="torch").tta is inference.TTA
    pred = Predictor.load(REPO / "checkpoints" / "net1.pt", engine="torch", tta=True)
    assert np.array_equal(pred.predict_tensor(x), on)
    assert np.array_equal(pred.predict_tensor(x, tta=False), off)  # a call may ask otherwise


def test_the_choice_follows_bf16_support_and_measurements():
    fp32_only = ["torch", "torchscript"]
    # no measurements: the guess of PREFERENCE
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
    assert engines.choose(bf16=True, runs_here=everything, timings={**t, "onnx-int8": 0.5}, exact=True) == "onnx"
    assert engines.choose(device="cuda") == "torch"
    assert engines.choose() in HERE and engines.ENGINES[engines.choose()].default_ok


def test_predictor_rejects_an_engine_that_cannot_run():
    with pytest.raises(ValueError, match="warp"):
        Predictor.load(REPO / "checkpoints" / "net1.pt", engine="warp")
    for name, spec in engines.ENGINES.items():
        if not spec.available():
            with pytest.raises(ValueError, match=re.escape(spec.why_not())):
                Predictor.load(REPO / "checkpoints" / "net1.pt", engine=name)


# ------------------------------------------------------------------------- int8's calibration faces

def test_calibration_is_a_fixed_sample_of_the_checkpoints_training_data(demo_dir):
    cal = calibration.for_data(str(demo_dir), 32, n=16)
    assert cal.real and cal.count == 16 and str(demo_dir) in cal.source and "train faces" in cal.source
    assert calibration.for_data(str(demo_dir), 32, n=16) == cal  # the same files, in the same order
    assert calibration.for_data(str(demo_dir), 32, n=16, seed=1).files != cal.files
    train = {it.path for it in discover(demo_dir).items if it.split == "train"}
    assert set(cal.files) <= train  # never a test face
    x = cal.crops()
    assert x.shape == (16, 3, 32, 32) and x.dtype == np.uint8
    (saved,) = (calibration.cache_dir() / "calibration").glob(f"{cal.key}.npy")
    np.save(saved, np.zeros_like(x))  # proves the second call reads the file rather than decoding
    assert not calibration.for_data(str(demo_dir), 32, n=16).crops().any()


def test_without_its_training_data_calibration_falls_back_to_demo_faces_and_says_why(tmp_path):
    gone = calibration.for_data(str(tmp_path / "gone"), 32, n=8)
    assert not gone.real and "demo faces" in gone.source and "not on this machine" in gone.source
    assert gone.crops().shape == (8, 3, 32, 32)
    assert "names no training data" in calibration.for_data(None, 32).source
    photos = tmp_path / "photos"
    (photos / "annotations").mkdir(parents=True)
    (photos / "images").mkdir()
    (photos / "annotations" / "a.xml").write_text("<annotation/>")
    assert "annotated photos" in calibration.for_data(str(photos), 32).source


@pytest.mark.skipif("onnx-int8" not in HERE, reason="onnxruntime is not installed")
def test_the_int8_graph_is_calibrated_once_then_read_from_the_cache(isolated_home, demo_dir):
    model = checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt"))
    cal = calibration.for_data(str(demo_dir), 32, n=16)
    first = engines.make("onnx-int8", model, 32, calibration=cal)
    assert first.calibration is cal
    (cached,) = (isolated_home / "cache" / "engines").glob("*.int8.onnx")
    assert cached.read_bytes() == first.graph
    cached.write_bytes(b"not a graph")  # proves the second engine reads the file rather than re-calibrating
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):
        engines.make("onnx-int8", model, 32, calibration=cal)(torch.zeros(1, 3, 32, 32))
    # other calibration faces make another graph
    other = engines.make("onnx-int8", model, 32, calibration=calibration.for_data(str(demo_dir), 32, n=8))
    assert len(list((isolated_home / "cache" / "engines").glob("*.int8.onnx"))) == 2 and other.graph != first.graph


def test_int8_weights_get_7_bits_on_x86_cpus_without_vnni(monkeypatch):
    monkeypatch.setattr(engines.platform, "machine", lambda: "x86_64")
    assert engines.int8_weights_7_bit({"avx2", "fma"}) is True                 # AMD EPYC with AVX2 only
    assert engines.int8_weights_7_bit({"avx2", "avx512f", "avx512bw"}) is True  # AVX-512 without VNNI
    assert engines.int8_weights_7_bit({"avx2", "avx512f", "avx512_vnni"}) is False
    assert engines.int8_weights_7_bit({"avx2", "avx_vnni"}) is False
    monkeypatch.setattr(engines.platform, "machine", lambda: "aarch64")
    assert engines.int8_weights_7_bit(set()) is False


@pytest.mark.skipif("onnx-int8" not in HERE, reason="onnxruntime is not installed")
@pytest.mark.parametrize("seven_bit", [False, True])  # both paths on any CPU
def test_the_int8_graph_holds_the_weights_in_the_range_the_cpu_gets(seven_bit, isolated_home, demo_dir,
                                                                     monkeypatch):
    """Without VNNI, full-range int8 weights saturate ORT's int16 sums (an AVX2 EPYC moved net1's P(mask)
    by up to 0.85); 7-bit weights do not. The graph is cached per choice, so a copied cache cannot mix them."""
    import onnx
    from onnx import numpy_helper

    monkeypatch.setattr(engines, "int8_weights_7_bit", lambda flags=None: seven_bit)
    model = checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt"))
    cal = calibration.for_data(str(demo_dir), 32, n=16)
    eng = engines.make("onnx-int8", model, 32, calibration=cal)
    graph = onnx.load_from_string(eng.graph)
    weights = [numpy_helper.to_array(t) for t in graph.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and t.dims and len(t.dims) >= 2]
    assert len(weights) == 7  # Net1's 6 convs and its FC layer
    top = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert top <= 64 if seven_bit else top == 127
    p = eng(torch.zeros(2, 3, 32, 32))
    assert p.shape == (2,) and np.isfinite(p).all()
    assert len(list((isolated_home / "cache" / "engines").glob("*.int8.onnx"))) == 1
    here = engines._int8_cache_path(model, 32, cal)
    monkeypatch.setattr(engines, "int8_weights_7_bit", lambda flags=None: not seven_bit)
    assert engines._int8_cache_path(model, 32, cal) != here


# ----------------------------------------------------------------------------- the measured default

class _Stub(engines.Engine):
    def __init__(self, name):
        super().__init__(None, 32)
        self.name = name

    def _run(self, x, threads):
        return np.zeros(len(x), np.float32)


@pytest.fixture
def stub_engines(monkeypatch):
    """engines.make returns stubs (no export, no calibration): the probe's logic, not the engines'.
    Returns the names each probe timed, one list per probe."""
    monkeypatch.setattr(engines, "make", lambda name, *a, **kw: _Stub(name))
    monkeypatch.setattr(engines, "available", lambda: list(engines.ENGINES))
    return []


def _timer(ms: dict[str, float], log: list):
    def timer(eng, size):
        log.append(eng.name)
        return ms[eng.name]
    return timer


MS = {"torch": 3.0, "torch-bf16": 2.0, "onnx": 1.5, "onnx-int8": 4.0}


def test_the_probe_picks_the_fastest_measured_and_keeps_it_in_the_cache(stub_engines):
    model = checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt"))
    log = []
    got = engine_probe.pick(model, 32, timer=_timer(MS, log))
    assert got.probed and got.name == "onnx" and got.engine.name == "onnx" and got.ms_per_face == MS
    assert sorted(log) == sorted(engines.eligible())  # every default-eligible engine, once
    again = engine_probe.pick(model, 32, exact=True, timer=_timer(MS, log))
    assert not again.probed and again.name == "onnx" and again.engine is None and len(log) == len(MS)
    faster_int8 = engine_probe.pick(checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt")), 32,
                                    timer=_timer({**MS, "onnx-int8": 0.5}, log))
    assert faster_int8.name == "onnx" and not faster_int8.probed  # the same weights: the cache still holds


def test_another_checkpoint_or_another_cpu_probes_again(stub_engines, monkeypatch):
    net1 = checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt"))
    log = []
    engine_probe.pick(net1, 32, timer=_timer(MS, log))
    retrained = checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt"))
    with torch.no_grad():
        next(retrained.parameters()).add_(1e-3)
    int8_first = {**MS, "onnx-int8": 0.5}
    got = engine_probe.pick(retrained, 32, timer=_timer(int8_first, log))
    assert got.probed and got.name == "onnx-int8"
    assert engine_probe.pick(retrained, 32, exact=True, timer=_timer(int8_first, log)).name == "onnx"
    n = len(log)
    real = engine_probe.cpu_key
    monkeypatch.setattr(engine_probe, "cpu_key", lambda: {**real(), "cpu": "AMX Xeon"})  # another machine
    assert engine_probe.pick(net1, 32, timer=_timer(MS, log)).probed and len(log) == n + len(MS)


def test_the_cpu_key_follows_what_torch_dispatches_to(monkeypatch):
    key = engine_probe.cpu_key()
    assert key["capability"] == torch.backends.cpu.get_cpu_capability()
    assert key["bf16"] == engines.bf16_supported() and key["cpu"]
    a = engine_probe.cache_path(checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt")), 32)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2" if key["capability"] != "AVX2" else "AVX512")
    b = engine_probe.cache_path(checkpoint.model(checkpoint.load(REPO / "checkpoints" / "net1.pt")), 32)
    assert a.parent == b.parent and a.name != b.name


def test_the_predictor_measures_its_default_once_and_says_what_runs(monkeypatch, demo_dir):
    """The real probe on Net1 (every engine that runs here), then its cache; the int8 engine's
    calibration is the checkpoint's data (the dev data where present, else the demo fallback)."""
    monkeypatch.delenv(inference.ENGINE_ENV, raising=False)
    path = REPO / "checkpoints" / "net1.pt"
    first = Predictor.load(path)
    info = first.engine_info
    assert info["chosen_by"] == "probe" and set(info["ms_per_face"]) == set(engines.eligible())
    assert info["engine"] == first.engine_name == engines.choose(timings=info["ms_per_face"])
    assert info["precision"] == engines.ENGINES[info["engine"]].precision
    second = Predictor.load(path)
    assert second.engine_info == {**info, "chosen_by": "probe-cache"}  # read, not measured again
    exact = Predictor.load(path, exact=True)
    assert exact.engine_info["engine"] == engines.choose(timings=info["ms_per_face"], exact=True)
    assert engines.ENGINES[exact.engine_name].exact
    if "onnx-int8" in HERE:
        int8 = Predictor.load(path, engine="onnx-int8").engine_info
        cal = calibration.for_data(first.config["data"], 32)
        assert int8["calibration"] == cal.source and int8["calibration_count"] == 64
        assert int8["chosen_by"] == "asked" and "calibrated on" in describe_engine(int8)
        assert int8["weight_bits"] == (7 if engines.int8_weights_7_bit() else 8)
        assert ("7-bit weights" in describe_engine(int8)) == engines.int8_weights_7_bit()
    words = describe_engine(info)
    assert words.startswith(f"{info['engine']} engine ({info['precision']}")
    assert "), the fastest measured here" in words
    assert ("7-bit weights" in words) == (info["weight_bits"] == 7)


def test_predict_json_says_which_engine_classified_the_faces(capsys, demo_dir):
    face = next((demo_dir / "test").glob("*.jpg"))
    assert main(["predict", str(REPO / "checkpoints" / "net1.pt"), str(face), "--detector", "none", "--json",
                 "--engine", "torch"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["faces"] and line["engine"] == Predictor.load(REPO / "checkpoints" / "net1.pt",
                                                              engine="torch").engine_info
    assert line["engine"]["engine"] == "torch" and line["engine"]["chosen_by"] == "asked"


def test_the_engine_can_be_pinned_by_the_environment(monkeypatch, isolated_home):
    monkeypatch.setenv(inference.ENGINE_ENV, "torch")
    pred = Predictor.load(REPO / "checkpoints" / "net1.pt")
    assert pred.engine_info == {"engine": "torch", "precision": "fp32", "weight_bits": None, "calibration": None, "calibration_count": 0,
                                "chosen_by": "env", "exact": False, "ms_per_face": {}}
    assert not list(isolated_home.glob("cache/engines/probe-*"))  # no probe ran
    assert Predictor.load(REPO / "checkpoints" / "net1.pt", engine="onnx" if "onnx" in HERE else "torch"
                          ).engine_info["chosen_by"] == "asked"  # a caller's engine= beats the pin
    monkeypatch.setenv(inference.ENGINE_ENV, "warp")
    with pytest.raises(ValueError, match="warp"):
        Predictor.load(REPO / "checkpoints" / "net1.pt")


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
