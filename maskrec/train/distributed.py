"""Several processes, one training run: what ``fit()`` needs to run under torchrun (DDP).

``torchrun --nproc_per_node N -m maskrec train ...`` starts N copies of the CLI with RANK,
WORLD_SIZE and LOCAL_RANK in their environment. The CLI calls :func:`setup` (nccl between GPUs,
gloo on CPU, with a timeout so a lost peer ends in an error, not a hang); ``fit()`` then asks
:func:`current` for a :class:`Context` and

- splits every global batch of ``cfg.batch_size`` images across the ranks: rank r takes positions
  r, r + world, ... of it. With a batch size divisible by the world size this is exactly the shard
  torch's ``DistributedSampler`` gives (its per-epoch permutation is our seeded ``randperm``), so the
  ranks together see the batches one process would, and the averaged gradient is the one it would
  compute. BatchNorm layers become :class:`SyncBatchNorm2d`, which normalises with the statistics
  of the whole global batch, so a step of N processes is the step of one process, up to rounding;
- reduces losses and gathers labels and scores, so every metric covers the whole split;
- writes the run folder on rank 0 only, and stops all ranks at the same batch.

Outside torchrun :data:`SINGLE` stands in and every collective is the identity, so one code path
serves one process and many.
"""
from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# How long a collective may wait for the other ranks before it fails (seconds). Long enough for one
# process per machine to decode a large dataset while the others wait at a barrier.
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Context:
    """This process's place in the job. ``device`` is where collectives run (CUDA for nccl)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def shard(self, batch):
        """This rank's share of a global batch (a tensor or a sequence): positions rank::world."""
        return batch[self.rank::self.world]

    def batches(self, order: torch.Tensor, size: int, should_stop: Callable[[], bool] = lambda: False) -> "Pass":
        """The global batches of ``size`` from order, one :class:`Batch` each, as one pass over
        them; ``should_stop`` is asked before each, and a stop asked of any rank ends the pass on
        every rank at the same batch (``Pass.stopped`` says so). A last batch too small to give
        every rank an image is left out."""
        return Pass(self, order, size, should_stop)

    def batch_mean(self, local_mean: float, batch: "Batch") -> float:
        """The global batch's mean of a per-image quantity (the loss) from this rank's mean over its
        share: equal on every rank (one process: local_mean itself)."""
        return self.sum(local_mean * len(batch.rows)) / batch.size

    @property
    def rows(self) -> slice:
        """The rows of a global batch that :meth:`shard` gives this rank."""
        return slice(self.rank, None, self.world)

    def share(self, n_local: int, n_global: int) -> float:
        """The factor on this rank's mean loss that makes DDP's average of the ranks' gradients the
        gradient of the global batch's mean loss (one process: exactly 1)."""
        return n_local * self.world / n_global

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (a stop asked of one process stops them all)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, x: float) -> float:
        if not self.enabled:
            return x
        t = torch.tensor([x], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.item()

    def gather(self, obj) -> list:
        """Every rank's obj, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def cat(self, a: np.ndarray) -> np.ndarray:
        """The ranks' arrays end to end (for metrics that do not depend on order)."""
        return a if not self.enabled else np.concatenate(self.gather(a))

    def interleave(self, a: np.ndarray) -> np.ndarray:
        """Undo :meth:`shard` over a whole split: rank r's values go back to positions r::world."""
        if not self.enabled:
            return a
        parts = self.gather(a)
        out = np.empty(sum(len(p) for p in parts), dtype=a.dtype)
        for r, p in enumerate(parts):
            out[r::self.world] = p
        return out

    def broadcast(self, obj):
        """Rank 0's obj on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's BatchNorm running statistics on every rank (what DDP broadcasts before each
        forward), so the test pass and the saved checkpoint use the same ones."""
        if self.enabled:
            for b in model.buffers():
                dist.broadcast(b.data, src=0)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around model (it averages gradients in backward), its BatchNorm
        layers synchronised across ranks (in place: the model keeps its state-dict keys); or model itself."""
        if not self.enabled:
            return model
        _sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)


class Batch(NamedTuple):
    """One global batch of a pass, as this process sees it."""
    index: int  # its place in the pass, from 0
    size: int  # images in the global batch, every rank's together
    rows: torch.Tensor  # the indices this process trains on (every one of them in one process)
    keep: slice  # which of the batch's per-image random draws are this process's (every rank draws them all)
    weight: float  # the factor on this process's mean loss that makes DDP's average the global batch's gradient


class Pass:
    """The global batches of one epoch (:meth:`Context.batches`); ``stopped`` once a stop ended it."""

    def __init__(self, ctx: Context, order: torch.Tensor, size: int, should_stop: Callable[[], bool]):
        self.ctx, self.order, self.size, self.should_stop = ctx, order, size, should_stop
        self.stopped = False

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.size)

    def __iter__(self) -> Iterator[Batch]:
        ctx = self.ctx
        for b in range(len(self)):
            batch = self.order[b * self.size:(b + 1) * self.size]
            if len(batch) < ctx.world:
                return
            if ctx.any(self.should_stop()):  # all ranks stop at the same batch
                self.stopped = True
                return
            rows = ctx.shard(batch)
            yield Batch(b, len(batch), rows, ctx.rows, ctx.share(len(rows), len(batch)))


class _AllReduceSum(torch.autograd.Function):
    """A sum over the ranks; its gradient is the sum of the ranks' gradients."""

    @staticmethod
    def forward(_, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(_, g: torch.Tensor) -> torch.Tensor:
        g = g.clone()
        dist.all_reduce(g)
        return g


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch: per-channel sums are added up
    across ranks (an all-reduce that autograd sees through, so gradients flow back to every rank),
    two passes (mean, then squared deviations) to keep float error at the level of the plain layer.
    torch.nn.SyncBatchNorm would do on GPUs, but refuses CPU tensors, and gloo on CPU is what CI runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        c, x32 = x.shape[1], x.float()  # (B, C, H, W); statistics in fp32 also under autocast
        count = torch.tensor([x.numel() / c], device=x.device)
        sums = _AllReduceSum.apply(torch.cat([x32.sum((0, 2, 3)), count]))
        n = sums[c]
        mean = sums[:c] / n
        dev = x32 - mean[None, :, None, None]
        var = _AllReduceSum.apply((dev * dev).sum((0, 2, 3))) / n  # biased, as BatchNorm normalises
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)  # unbiased, as BatchNorm keeps
            self.num_batches_tracked.add_(1)
        out = dev * torch.rsqrt(var + self.eps)[None, :, None, None]
        return out * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _sync_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            assert m.affine and m.track_running_stats and m.momentum is not None
            m.__class__ = SyncBatchNorm2d  # same parameters and buffers, another forward


SINGLE = Context()


def launched() -> bool:
    """True inside a torchrun job of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> Context:
    """Join the torchrun job's process group: nccl when training on CUDA, gloo on CPU.

    The timeout (``$MASKREC_DIST_TIMEOUT`` seconds, default 1800) bounds every collective, so a rank
    whose peer died fails with an error instead of waiting forever (torchrun also stops the other
    ranks as soon as one fails)."""
    timeout = timedelta(seconds=float(os.environ.get("MASKREC_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=timeout, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return current()


def current() -> Context:
    """The Context of this process: from the initialised process group, else :data:`SINGLE`."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    dev = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    return Context(dist.get_rank(), dist.get_world_size(), local_rank(), dev)


def teardown(ok: bool = True) -> None:
    """Leave the process group. On a normal exit every rank first meets the others at a barrier, so
    no rank closes its gloo connections while a peer still uses them. After a failure the peers may
    be gone, so no barrier then. (A rank can still die in the C++ destructors of process exit; see
    :func:`exit_now`.)"""
    if dist.is_available() and dist.is_initialized():
        if ok:
            dist.barrier()
        dist.destroy_process_group()


def exit_now(code: int) -> None:
    """End a torchrun rank after :func:`teardown`, skipping the C++ destructors of process exit.

    On 2 CPU cores a rank sometimes died there with "terminate called without an active exception"
    (SIGABRT) after a complete run whose files were all written and whose process group was
    destroyed, and torchrun then reported the job as failed (CI saw it; here 2 in 11 starts without
    the barrier, 1 in about 50 with it). Every file of the run is written (atomically) before this
    point and nothing else is left to do, so leaving with os._exit after flushing our output loses
    nothing; measured: 0 failures in 40 starts on 2 loaded cores."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def local_first(ctx: Context):
    """Run the block on local rank 0 of each machine first, then on the others (all ranks pass one
    barrier): one process decodes and caches the data, the rest map the files it wrote."""
    if ctx.local_rank != 0:
        ctx.barrier()
    yield
    if ctx.local_rank == 0:
        ctx.barrier()


def torchrun_command(run_dir: str | Path, nproc: int) -> list[str]:
    """The command that trains (or resumes) the run in run_dir with nproc processes on this machine.

    ``--resume`` takes every setting from the run's config.json; a fresh run (no last.pt) starts at
    epoch 1. ``--standalone`` picks a free rendezvous port, so several jobs can run side by side."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "maskrec", "train", "--resume", str(run_dir)]
