"""Inference engines: one checkpoint's net run by torch, torch under bf16, ONNX Runtime, ...

    eng = make("onnx", predictor.model, 32)    # the Predictor's fp32 nn.Module and its input size
    p = eng(x)                                  # (B, 3, S, S) uint8 (or float in [0, 1]) -> (B,) P(mask)
    p = eng(x, tta=True)                        # the same, averaged with each face's mirror (one 2B batch)
    eng = make("onnx-int8", model, 32, calibration=calibration.for_data(cfg["data"], 32))
    name = choose(timings=ms_per_face)          # the fastest default-eligible engine measured
    [(r.name, r.why_not()) for r in ENGINES.values()]   # what runs here, and why not

Every engine computes the checkpoint's P(mask); they differ in how. Three are fp32 and agree with the
checkpoint to within ``EXACT_TOL`` (rounding order only): ``torch`` (eager, channels_last),
``onnx`` (ONNX Runtime, full graph optimisation: BN folded into the convs, NCHWc conv kernels) and
``torchscript`` (trace, freeze, optimize_for_inference). Two trade precision for speed and are held to
the test split's F1 instead: ``torch-bf16`` (autocast bf16, only where the CPU has bf16 kernels) and
``onnx-int8`` (static int8 quantisation, calibrated on a sample of the checkpoint's training data,
``maskrec.infer.calibration``; its graph is cached under ``cache/engines/``). Which one a Predictor runs by
default is measured on the machine at hand (``maskrec.infer.probe``); ``choose`` is the rule applied
to those measurements.

Threads: ``threads_for`` gives a call as many threads as its work can use and the machine has idle;
a frame's few faces get one, so a training run beside the live page keeps its cores.
"""
from __future__ import annotations

import copy
import hashlib
import os
import platform
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from maskrec.core.atomic import atomic_write_bytes
from maskrec.infer.calibration import Calibration
from maskrec.infer.calibration import demo as demo_calibration
from maskrec.models.checkpoint import weights_digest
from maskrec.config import cache_dir
from maskrec.data import batch_to_float
from maskrec.infer.export import to_onnx

EXACT_TOL = 1e-3  # max |dP(mask)| of an fp32 engine against the checkpoint run by eager torch

# About 2 ms of Net1 (16 faces) or 8 ms of Net2 (4 faces) on one core: enough work per thread that
# starting another (tens of microseconds on a free core) is noise. Below it one thread is fastest.
PIXELS_PER_THREAD = 16 * 32 * 32


def threads_for(batch: int, input_size: int, load: float | None = None, cpus: int | None = None) -> int:
    """Intra-op threads for one call: one per PIXELS_PER_THREAD of input, at most the idle cores.

    Idle cores = CPUs less the 1-minute load average (rounded down): with a training run busy on
    both cores of a 2-core machine none are idle and a frame gets one thread. More threads than
    idle cores never pay: measured on 2 busy cores, 5 Net1 crops took ~200 ms with 2 threads and
    ~10 ms with 1, as each thread waits for a core the trainer holds."""
    cpus = cpus or os.cpu_count() or 1
    load = os.getloadavg()[0] if load is None else load
    idle = int(cpus - load)
    want = (batch * input_size * input_size) // PIXELS_PER_THREAD
    return max(1, min(want, idle, cpus))


@contextmanager
def torch_threads(n: int | None):
    """Torch intra-op threads for the calling thread only, restored after.

    With torch's OpenMP backend (the CPU wheels) ``set_num_threads`` sets the calling thread's
    OpenMP team size: a webcam worker using 1 leaves a training thread's setting alone.
    """
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bf16_supported() -> bool:
    """Torch has bf16 CPU kernels here (AVX-512 bf16 or AMX); False under ONEDNN_MAX_CPU_ISA=AVX2."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class _PMask(nn.Module):
    # (B, 3, S, S) float in [0, 1] -> (B,) P(mask): the exp of the net's log-probability, in the graph
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 1].exp()


def _eval_copy(model: nn.Module) -> nn.Module:
    # A private NCHW copy in eval mode: exporters and tracers flip train/eval and formats on what
    # they are given, and the Predictor's own model must stay as it is (Grad-CAM uses it).
    return _PMask(copy.deepcopy(model).to(memory_format=torch.contiguous_format)).eval()


class Engine:
    """(B, 3, S, S) uint8 or float in [0, 1] -> (B,) float32 P(mask). Subclasses set ``_run``."""

    name = ""
    device = torch.device("cpu")

    def __init__(self, model: nn.Module, input_size: int):
        self.input_size = input_size

    def __call__(self, x: torch.Tensor, threads: int | None = None, tta: bool = False) -> np.ndarray:
        """tta: flip test-time augmentation, P(mask) averaged over each face and its mirror image."""
        if len(x) == 0:
            return np.zeros(0, np.float32)
        b = len(x)
        x = x.to(self.device)  # uint8 to a GPU: a quarter of the bytes of float
        if tta:
            # (B, 3, S, S) -> (2B, 3, S, S): the faces, then their mirrors, in one batch, so the
            # mirrors share the call's fixed overhead (most of a face's time at batch 1)
            x = torch.cat([x, x.flip(3)])
        if x.dtype == torch.uint8:
            x = batch_to_float(x)  # the one preprocessing definition; in-graph gained nothing measurable
        n = threads or threads_for(len(x), self.input_size)
        p = np.asarray(self._run(x, n), np.float32)
        return p.reshape(2, b).mean(0, dtype=np.float32) if tta else p

    def _run(self, x: torch.Tensor, threads: int) -> np.ndarray:
        raise NotImplementedError


class TorchEngine(Engine):
    """Eager torch on the model itself (no copy), channels_last; bf16=True runs it under autocast."""

    def __init__(self, model: nn.Module, input_size: int, bf16: bool = False):
        super().__init__(model, input_size)
        self.model, self.bf16 = model, bf16
        self.name = "torch-bf16" if bf16 else "torch"
        self.device = next(model.parameters()).device

    def _run(self, x, threads):
        x = x.contiguous(memory_format=torch.channels_last)
        with torch_threads(threads if self.device.type == "cpu" else None), torch.inference_mode(), \
                torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            return self.model(x)[:, 1].float().exp().cpu().numpy()


class TorchScriptEngine(Engine):
    """torch.jit.trace -> freeze (BN folded into the convs) -> optimize_for_inference (oneDNN convs)."""

    name = "torchscript"

    def __init__(self, model: nn.Module, input_size: int):
        super().__init__(model, input_size)
        example = torch.rand(2, 3, self.input_size, self.input_size, generator=torch.Generator().manual_seed(0))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_eval_copy(model), example)
            self.module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def _run(self, x, threads):
        with torch_threads(threads), torch.inference_mode():
            return self.module(x).numpy()


class OnnxEngine(Engine):
    """ONNX Runtime on the CPU, ORT_ENABLE_ALL; one session per thread count (set at its creation).

    int8=True quantises the graph statically (QDQ, int8 weights per channel, 7-bit on x86 without VNNI:
    ``int8_weights_7_bit``, and int8 activations), its
    activation ranges calibrated on ``calibration``'s faces (default: the built-in demo faces; a
    Predictor passes a sample of its checkpoint's training data). ``onnx_graph``: the model's fp32
    graph already exported (an "onnx" engine's ``graph``), so the probe exports each net once."""

    def __init__(self, model: nn.Module, input_size: int, int8: bool = False,
                 calibration: Calibration | None = None, onnx_graph: bytes | None = None):
        super().__init__(model, input_size)
        self.name = "onnx-int8" if int8 else "onnx"
        s = self.input_size
        self.calibration = (calibration or demo_calibration(s)) if int8 else None
        self.weight_bits = (7 if int8_weights_7_bit() else 8) if int8 else None  # what _quantize gives this CPU
        # Calibrating takes 1-4 s (Net1-Net2, 2 busy cores): the int8 graph is kept in the cache,
        # keyed by the weights, the calibration sample and the versions that made it.
        cached = _int8_cache_path(model, s, self.calibration) if int8 else None
        if cached is not None and cached.exists():
            self.graph = cached.read_bytes()
        else:
            with tempfile.TemporaryDirectory(prefix="maskrec-onnx-") as tmp:
                path = Path(tmp) / "net.onnx"
                if onnx_graph is not None:
                    path.write_bytes(onnx_graph)
                else:
                    example = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
                    to_onnx(_eval_copy(model), example, path, output="p_mask")
                if int8:
                    path = _quantize(path, self.calibration.crops())
                self.graph = path.read_bytes()
            if cached is not None:
                atomic_write_bytes(cached, self.graph)
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def session(self, threads: int):
        import onnxruntime as ort  # optional and heavy: only the ONNX engines need it

        with self._lock:
            if threads not in self._sessions:
                so = ort.SessionOptions()
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                # ORT's pool threads otherwise spin-wait for the next call, burning the cores a
                # training run beside the live page needs.
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[threads] = ort.InferenceSession(self.graph, so, providers=["CPUExecutionProvider"])
            return self._sessions[threads]

    def _run(self, x, threads):
        # a session per power of two only: the load average wanders, and each holds its own weights
        threads = 1 << (threads.bit_length() - 1)
        return self.session(threads).run(None, {"image": x.numpy()})[0]  # ORT copies a strided view itself


# x86 CPUs with one of these multiply u8 x s8 and add in 32 bits (VNNI); without (AVX2, AVX-512 of
# Skylake) ONNX Runtime's int8 convs use VPMADDUBSW, whose int16 sum of two products saturates.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> set[str]:
    """/proc/cpuinfo's flags of the first CPU (empty where there is none: not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return set(value.split())
    except OSError:
        pass
    return set()


def int8_weights_7_bit(flags: set[str] | None = None) -> bool:
    """Quantise int8 weights to 7 bits (ORT's ``reduce_range``) on x86 CPUs without VNNI, the
    workaround ONNX Runtime and OpenVINO give for that saturation. Measured on an AVX2 EPYC, net1.pt
    on the dev test split: full 8-bit weights moved P(mask) by up to 0.85 and F1 from 0.9783 to 0.9703;
    7-bit ones by up to 0.12, F1 0.9773. With VNNI the full range is kept (no saturation there)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False  # ARM's int8 dot products accumulate in 32 bits
    flags = cpu_flags() if flags is None else flags
    return not any(f in flags for f in VNNI_FLAGS)


def _int8_cache_path(model: nn.Module, size: int, calibration: Calibration) -> Path:
    import onnxruntime as ort  # optional and heavy: its version is part of the key

    h = hashlib.sha256(f"{size} {torch.__version__} {ort.__version__} {weights_digest(model)} "
                       f"calibration {calibration.key} 7-bit {int8_weights_7_bit()}".encode())
    return cache_dir() / "engines" / f"{h.hexdigest()[:20]}.int8.onnx"


def _quantize(path: Path, calibration: np.ndarray) -> Path:
    # optional and heavy: only quantising needs it
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            x = batch_to_float(torch.from_numpy(np.ascontiguousarray(calibration))).numpy()
            self.batches = iter([{"image": x[i:i + 32]} for i in range(0, len(x), 32)])

        def get_next(self):
            return next(self.batches, None)

    pre, out = path.with_suffix(".pre.onnx"), path.with_suffix(".int8.onnx")
    quant_pre_process(str(path), str(pre))  # shape inference + BN folding, so the convs quantise whole
    # S8S8 QDQ: the format ORT recommends on x86. Without VNNI its kernels still saturate on full-range
    # weights (int8_weights_7_bit), so there the weights get 7 bits.
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    reduce_range=int8_weights_7_bit())
    return out


def _no_onnxruntime() -> str:
    try:
        import onnxruntime as ort  # optional: whether it is installed is the question
    except ImportError:
        return "onnxruntime is not installed"
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CPU execution provider"
    return ""


def _no_bf16() -> str:
    return "" if bf16_supported() else "the CPU has no bf16 kernels (needs AVX-512 bf16 or AMX)"


@dataclass(frozen=True)
class EngineSpec:
    name: str
    # (model, input_size, calibration=None, onnx_graph=None) -> Engine; each engine takes what it uses
    make: Callable[..., Engine]
    exact: bool  # fp32: equal to the checkpoint within EXACT_TOL; else held to the test split's F1
    why_not: Callable[[], str]  # "" when it runs here
    default_ok: bool  # may be chosen as the default (an approximate engine only if it kept F1)
    precision: str  # "fp32", "bf16" or "int8": what Predictor.engine_info reports
    note: str

    def available(self) -> bool:
        return not self.why_not()


ENGINES: dict[str, EngineSpec] = {e.name: e for e in (
    EngineSpec("torch", lambda m, s, **_: TorchEngine(m, s), True, lambda: "", True, "fp32",
               "eager fp32, channels_last"),
    EngineSpec("torch-bf16", lambda m, s, **_: TorchEngine(m, s, bf16=True), False, _no_bf16, True, "bf16",
               "autocast bf16, channels_last"),
    EngineSpec("onnx", lambda m, s, **_: OnnxEngine(m, s), True, _no_onnxruntime, True, "fp32",
               "ONNX Runtime fp32, ORT_ENABLE_ALL"),
    EngineSpec("torchscript", lambda m, s, **_: TorchScriptEngine(m, s), True, lambda: "", False, "fp32",
               "trace+freeze+optimize_for_inference; never ahead of onnx"),
    # Default-eligible: on the dev test split (986 faces) its F1 at the saved threshold equalled
    # fp32's for both shipped nets (tests/test_engines.py holds it to 0.003).
    EngineSpec("onnx-int8", lambda m, s, calibration=None, onnx_graph=None, **_: OnnxEngine(
        m, s, int8=True, calibration=calibration, onnx_graph=onnx_graph), False, _no_onnxruntime, True, "int8",
               "ONNX Runtime static int8 (QDQ), calibrated on 64 of the checkpoint's train faces"),
)}

# The guess where nothing was measured (a caller without a checkpoint to probe, such as
# ``choose(exact=True)`` alone): fastest first as measured on an AMD EPYC with AVX-512 bf16, 1
# thread, both nets, batch 1 and 8: onnx-int8 2.5-6x eager fp32; then bf16 autocast (1.3-3x) ahead
# of ORT fp32 (1-3x). The bench measured other orders on an AMX Xeon under load, which is why a
# Predictor's default is measured (maskrec.infer.probe) rather than read from here.
PREFERENCE = {True: ("onnx-int8", "torch-bf16", "onnx", "torch"), False: ("onnx-int8", "onnx", "torch")}


def available() -> list[str]:
    return [n for n, e in ENGINES.items() if e.available()]


def eligible(exact: bool = False, runs_here: list[str] | None = None) -> list[str]:
    """The engines that may be a default here (``exact``: fp32 only), in registry order."""
    runs_here = available() if runs_here is None else runs_here
    return [n for n, e in ENGINES.items() if n in runs_here and e.default_ok and (e.exact or not exact)]


def choose(bf16: bool | None = None, device: str | torch.device = "cpu",
           timings: dict[str, float] | None = None, runs_here: list[str] | None = None,
           exact: bool = False) -> str:
    """The default engine: given ``timings`` (engine -> ms per face, from ``engine_probe`` or the
    bench), the fastest default-eligible one timed; without, the first of PREFERENCE[bf16] that
    runs here (a guess).

    ``bf16`` None asks the CPU; ``runs_here`` None asks each engine (``available()``). A GPU device
    always gets torch: the other engines are CPU-only. ``exact`` keeps to fp32 engines: scoring a
    checkpoint (evaluate, threshold, the Evaluate page) reports the checkpoint's own probabilities,
    the ones its threshold was picked on, not int8's (which move single P(mask) values by up to ~0.09)."""
    if torch.device(device).type != "cpu":
        return "torch"
    bf16 = bf16_supported() if bf16 is None else bf16
    ok = [n for n in eligible(exact, runs_here) if bf16 or ENGINES[n].precision != "bf16"]
    timed = [n for n in ok if n in (timings or {})]
    if timed:
        return min(timed, key=timings.__getitem__)
    guess = [n for n in PREFERENCE[bf16] if n in ok]
    return guess[0] if guess else "torch"


def make(name: str, model: nn.Module, input_size: int, calibration: Calibration | None = None,
         onnx_graph: bytes | None = None) -> Engine:
    """The engine ``name`` for an fp32 model taking (B, 3, input_size, input_size); ValueError when it
    is unknown or does not run here. ``calibration``: int8's faces (default: the demo faces, stated
    in the engine's ``calibration.source``); ``onnx_graph``: the fp32 ONNX export to reuse."""
    try:
        spec = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r} (choose from {', '.join(ENGINES)})") from None
    why = spec.why_not()
    if why:
        raise ValueError(f"engine {name} does not run here: {why}")
    return spec.make(model, input_size, calibration=calibration, onnx_graph=onnx_graph)
