"""step: training-step images/s of the settings ``fit`` picks on this machine against plain eager
fp32 NCHW, with achieved GFLOP/s next to a large matmul measured in the same run (fp32 and bf16)."""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F

from maskrec.config import TrainConfig
from maskrec.models.build import build, spec
from maskrec.train.loop import speed_settings

from bench.common import row


def forward_flops(net: str) -> float:
    """Multiply-adds x 2 of one forward pass of one image (convs and the FC layer)."""
    model, s = build(net), spec(net).input_size
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total += 2 * mod.in_channels * mod.out_channels * k * out.shape[2] * out.shape[3]
        elif isinstance(mod, nn.Linear):
            total += 2 * mod.in_features * mod.out_features

    for m in model.modules():
        m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, s, s))
    return float(total)


def matmul_gflops(n: int = 2048, seconds: float = 2.0, dtype: torch.dtype = torch.float32) -> float:
    """The machine's arithmetic ceiling: best GFLOP/s of an n x n matmul in dtype (bf16 runs on
    every CPU, at its full rate only where the CPU has bf16 instructions)."""
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    a @ b
    best = 0.0
    for _ in range(3):
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            k += 1
        best = max(best, 2 * n ** 3 * k / (time.perf_counter() - t0) / 1e9)
    return best


def step_rate(net: str, batch: int, channels_last: bool, bf16: bool, seconds: float) -> float:
    """Images/s of Adam training steps on random data for about ``seconds`` (at least 2 steps)."""
    torch.manual_seed(0)
    s = spec(net).input_size
    model = build(net)
    x, y = torch.rand(batch, 3, s, s), torch.randint(0, 2, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = F.nll_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # first call builds oneDNN primitives
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def cpu_speed_settings() -> tuple[bool, bool]:
    """(channels_last, bf16) as fit() picks them for the CPU here."""
    return speed_settings(TrainConfig(), torch.device("cpu"))


def bench_step(quick: bool) -> list[dict]:
    cl, bf16 = cpu_speed_settings()
    peaks = {dt: matmul_gflops(512 if quick else 2048, 0.5 if quick else 3.0, dt)
             for dt in (torch.float32, torch.bfloat16)}
    peak = peaks[torch.bfloat16 if bf16 else torch.float32]  # the ceiling of the precision we train in
    rows = []
    for net, batch, goal in (("net1", 64, 3.0), ("net2", 128, 2.0)):
        if quick:  # a smoke run: small batches, one short round
            batch, goal = batch // 8, None
        secs = 0.5 if quick else (4.0 if net == "net1" else 12.0)
        base = ours = 0.0
        for _ in range(1 if quick else 2):  # interleaved rounds, best of each
            base = max(base, step_rate(net, batch, False, False, secs))
            ours = max(ours, step_rate(net, batch, cl, bf16, secs))
        gf = 3 * forward_flops(net) / 1e9  # forward + backward ~ 3 forward passes
        rows.append(row("step", f"{net} train step, batch {batch}", ours, base, "img/s", True, goal,
                        f"channels_last={cl} bf16={bf16}; {ours * gf:.0f} vs {base * gf:.0f} GFLOP/s, "
                        f"matmul {peak:.0f} GFLOP/s ({ours * gf / peak:.0%} of it)"))
    rows.append({"section": "step", "what": "matmul 2048x2048 ceiling, fp32 / bf16", "ours": peaks[torch.float32],
                 "baseline": peaks[torch.bfloat16], "unit": "GFLOP/s", "ratio": None, "goal": None, "met": None,
                 "note": f"bf16/fp32 {peaks[torch.bfloat16] / peaks[torch.float32]:.1f}x"})
    return rows
