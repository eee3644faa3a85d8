"""Training: a plain loop cut into functions, and a background job that runs it.

``fit(cfg, run)`` trains and yields one record per epoch (after it is safely on disk)::

    for rec in fit(PRESETS["net1"], new_run(cfg)):
        print(rec["epoch"], rec["test_f1"])

Train metrics are taken over the epoch's batches as the model learns them (the loss the
optimiser saw); test metrics come from a full pass in eval mode. ``should_stop`` is polled before
every batch, so a stop takes effect within one batch. Calling ``fit`` again on a run that holds a
``last.pt`` resumes after its last finished epoch, with optimiser and random state restored.
"""
from __future__ import annotations

import math
import signal
import subprocess
import threading
import time
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint, distributed
from .config import CLASS_NAMES, REPO_ROOT, TrainConfig
from .jobs import BackgroundJob
from .data import DataError, Dataset, batch_to_float, discover, load_split, preprocessing_info
from .metrics import epoch_metrics, mistakes
from .models import build, spec
from .runs import Run, end_state

N_ERRORS_KEPT = 48  # misclassified test images kept per epoch for the gallery
# Two classes start near ln 2 = 0.69; a mean batch loss this high means the true class gets
# probability e^-100: the run has diverged even if the numbers are still finite.
DIVERGED_LOSS = 100.0


class BatchProgress(NamedTuple):
    """Handed from the training thread to whoever draws a progress bar (immutable, so safe to share)."""
    epoch: int
    batch: int
    batches: int
    phase: str  # "load" | "train" | "test"
    epoch_started: float


class TrainingFailed(RuntimeError):
    pass


def pick_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The device a name asks for; under torchrun (local_rank given) each process takes the GPU
    of its local rank, whatever index the name holds."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but no CUDA GPU is available here")
    if dev.type == "cuda" and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    return dev


def _bf16_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def speed_settings(cfg: TrainConfig, device: torch.device) -> tuple[bool, bool]:
    """(channels_last, bf16): the config's choice, or what pays on this hardware when None."""
    cl = cfg.channels_last if cfg.channels_last is not None else True
    bf16 = cfg.bf16 if cfg.bf16 is not None else _bf16_ok(device)
    return cl, bf16


def augment_batch(x: torch.Tensor, gen: torch.Generator, n: int | None = None,
                  keep: slice = slice(None)) -> torch.Tensor:
    """Flip, small crop/scale and colour jitter on a float batch (B, 3, S, S) in [0, 1].

    The random numbers are drawn for n images (default B) and rows ``keep`` of them used: under
    torchrun every rank draws for the whole global batch and keeps its share, so the ranks'
    generators stay in step (they also draw the next epoch's order)."""
    n = x.shape[0] if n is None else n
    flip = (torch.rand(n, generator=gen) < 0.5)[keep]
    x = torch.where(flip[:, None, None, None].to(x.device), x.flip(3), x)
    scale = (0.9 + 0.2 * torch.rand(n, generator=gen))[keep]
    shift = ((torch.rand(n, 2, generator=gen) - 0.5) * 0.16)[keep]
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    bright = (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen))[keep].to(x.device)
    contrast = (0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=gen))[keep].to(x.device)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean * bright).clamp_(0, 1)


def lr_at(cfg: TrainConfig, t: float) -> float:
    """Learning rate at training time t, counted in epochs from 0 (a pure function, so resume
    needs no scheduler state). "cosine": linear warm-up over the first epoch (the first tenth of
    a run shorter than 10 epochs), then cosine decay to 0 at the end of the last epoch."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = min(1.0, cfg.epochs / 10)
    if t < warm:
        return cfg.lr * max(t / warm, 0.01)
    frac = (t - warm) / max(cfg.epochs - warm, 1e-9)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on device; on CUDA through pinned memory, so the copy runs asynchronously."""
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def _prepare(xb: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    xb = batch_to_float(_to(xb, device))
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def train_one_epoch(model: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
                    cfg: TrainConfig, gen: torch.Generator, device: torch.device, *,
                    channels_last: bool, bf16: bool, should_stop: Callable[[], bool],
                    on_batch: Callable[[int, int], None], epoch: int = 1,
                    scaler: torch.amp.GradScaler | None = None, ctx: distributed.Context = distributed.SINGLE
                    ) -> tuple[float, np.ndarray, np.ndarray] | None:
    """One pass over X in a seeded random order. Returns (mean loss, labels, p_mask) or None if stopped.

    Under torchrun each global batch of cfg.batch_size is split across the ranks (``ctx.shard``);
    the loss, labels and scores returned cover every rank's images. An enabled ``scaler`` means
    fp16 autocast with loss scaling (CUDA GPUs without bf16)."""
    model.train()
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)  # disabled: a pass-through
    fp16 = scaler.is_enabled()
    order = torch.randperm(len(X), generator=gen)
    n_batches = math.ceil(len(X) / cfg.batch_size)
    total, seen, labels, scores = 0.0, 0, [], []
    for b in range(n_batches):
        if ctx.any(should_stop()):
            return None
        batch = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        if len(batch) < ctx.world:  # a tail too small to give every rank an image is left out
            break
        idx = ctx.shard(batch)
        xb = _prepare(X[idx], device, channels_last)
        yb = _to(y[idx], device)
        if cfg.augment:
            xb = augment_batch(xb, gen, n=len(batch), keep=slice(ctx.rank, None, ctx.world))
        with torch.autocast(device.type, dtype=torch.float16 if fp16 else torch.bfloat16, enabled=bf16 or fp16):
            out = model(xb)
        loss = F.nll_loss(out.float(), yb)
        batch_total = ctx.sum(loss.item() * len(idx))  # summed over the global batch, equal on every rank
        mean = batch_total / len(batch)
        if not math.isfinite(mean) or mean > DIVERGED_LOSS:
            raise TrainingFailed(f"training diverged: the loss reached {mean:.4g} in batch {b + 1}; "
                                 f"lower the learning rate (now {cfg.lr})")
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch - 1 + b / n_batches)
        opt.zero_grad(set_to_none=True)
        # DDP averages the ranks' gradients; weighting each rank's mean by its share of the batch makes
        # that average the gradient of the global batch's mean loss (one process: a factor of exactly 1)
        scaler.scale(loss * (len(idx) * ctx.world / len(batch))).backward()
        scaler.step(opt)
        scaler.update()
        total += batch_total
        seen += len(batch)
        labels.append(yb.cpu())
        scores.append(out.detach().float()[:, 1].exp().cpu())
        on_batch(b + 1, n_batches)
    return total / seen, ctx.cat(torch.cat(labels).numpy()), ctx.cat(torch.cat(scores).numpy())


@torch.inference_mode()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device, *,
             batch_size: int = 512, channels_last: bool = False, bf16: bool = False, fp16: bool = False,
             on_batch: Callable[[int, int], None] | None = None,
             ctx: distributed.Context = distributed.SINGLE) -> tuple[float, np.ndarray]:
    """(mean NLL loss, p_mask per image) in eval mode. Under torchrun each rank scores rows
    rank::world and every rank gets the whole split's loss and scores back, in order."""
    model.eval()
    n_all = len(X)
    X, y = ctx.shard(X), ctx.shard(y)  # views, no copy
    total, scores = 0.0, []
    n_batches = math.ceil(len(X) / batch_size)
    for b in range(n_batches):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        xb = _prepare(X[sl], device, channels_last)
        with torch.autocast(device.type, dtype=torch.float16 if fp16 else torch.bfloat16, enabled=bf16 or fp16):
            out = model(xb).float()
        total += F.nll_loss(out, _to(y[sl], device), reduction="sum").item()
        scores.append(out[:, 1].exp().cpu())
        if on_batch:
            on_batch(b + 1, n_batches)
    p = torch.cat(scores).numpy() if scores else np.zeros(0, np.float32)
    return ctx.sum(total) / max(n_all, 1), ctx.interleave(p)


def resolve_data(cfg: TrainConfig) -> Dataset:
    if cfg.data:
        return discover(cfg.data)
    from .synth import ensure_demo_data
    return discover(ensure_demo_data())


def fit(cfg: TrainConfig, run: Run, should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[BatchProgress], None] = lambda p: None) -> Iterator[dict]:
    """Train cfg into run (resuming from its last.pt if there is one); yield one record per epoch.

    Under torchrun every rank calls it (see maskrec.distributed): each trains on its share of every
    batch through DistributedDataParallel, all yield the same records, rank 0 alone writes the run."""
    cfg.validate()
    ctx = distributed.current()
    device = pick_device(cfg.device, ctx.local_rank if ctx.enabled else None)
    channels_last, bf16 = speed_settings(cfg, device)
    # fp16 needs loss scaling against gradient underflow; only CUDA GPUs without bf16 take this path
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and not bf16 and cfg.bf16 is None)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: cuDNN times its kernels once, keeps the fastest
    size = spec(cfg.net).input_size
    t_load = time.time()
    on_progress(BatchProgress(0, 0, 1, "load", t_load))
    load_cb = lambda done, total: on_progress(BatchProgress(0, done, total, "load", t_load))
    with distributed.local_first(ctx):  # one process per machine decodes and caches; the rest map its files
        ds = resolve_data(cfg)
        Xtr, ytr, _ = load_split(ds, "train", size, load_cb)
        Xte, yte, test_paths = load_split(ds, "test", size)
    # every file left out and why, also when a split turns out empty (it says what went wrong)
    if ctx.main:
        run.write_json("skipped.json", [{"path": s.path, "reason": s.reason} for s in ds.skipped])
    if len(Xtr) == 0:
        raise DataError("the train split has no usable images")
    if len(Xte) == 0:
        raise DataError("the test split has no usable images")

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build(cfg.net, dropout=cfg.dropout).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, best_f1 = 1, -1.0
    if ctx.rank:  # ranks > 0 draw their own dropout masks; rank 0 keeps the single-process stream
        torch.manual_seed(cfg.seed + ctx.rank)
    if run.last_ckpt.exists():  # under torchrun every rank reads the same last.pt
        ck = checkpoint.load(run.last_ckpt, map_location=device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"]["gen"])
        torch_states = ck["rng"].get("torch_ranks") or [ck["rng"]["torch"]]
        if ctx.rank < len(torch_states):
            torch.set_rng_state(torch_states[ctx.rank])
        if "scaler" in ck:
            scaler.load_state_dict(ck["scaler"])
        start, best_f1 = ck["epoch"] + 1, ck.get("best_f1", -1.0)
    net = ctx.wrap(model, device)  # DistributedDataParallel under torchrun, else the model itself

    # the precision the weights were trained in (they are saved as fp32 whatever it was)
    precision = "bf16" if bf16 else "fp16" if scaler.is_enabled() else "fp32"
    base = {"net": cfg.net, "input_size": size, "preprocessing": preprocessing_info(size),
            "classes": list(CLASS_NAMES), "threshold": 0.5, "config": cfg.to_dict(),
            "precision": precision, "channels_last": channels_last,
            "data": {"root": str(ds.root), "layout": ds.layout, "held_out": ds.held_out,
                     "counts": {k: {0: int((v == 0).sum()), 1: int((v == 1).sum())}  # what it trained on
                                for k, v in (("train", ytr), ("test", yte))},
                     "skipped": len(ds.skipped)}}
    for epoch in range(start, cfg.epochs + 1):
        t0 = time.time()
        cb = lambda done, total, phase="train": on_progress(BatchProgress(epoch, done, total, phase, t0))
        tr = train_one_epoch(net, opt, Xtr, ytr, cfg, gen, device, channels_last=channels_last,
                             bf16=bf16, should_stop=should_stop, on_batch=cb, epoch=epoch,
                             scaler=scaler, ctx=ctx)
        if tr is None:
            return
        ctx.sync_buffers(model)  # the test pass and the checkpoint use rank 0's BatchNorm statistics
        te_loss, te_p = evaluate(model, Xte, yte, device, batch_size=cfg.eval_batch_size,
                                 channels_last=channels_last, bf16=bf16, fp16=scaler.is_enabled(),
                                 on_batch=lambda d, t: cb(d, t, "test"), ctx=ctx)
        mtr = epoch_metrics(tr[1], tr[2], tr[0])
        mte = epoch_metrics(yte.numpy(), te_p, te_loss)
        rec = {"epoch": epoch, **{f"train_{k}": v for k, v in mtr.items()},
               **{f"test_{k}": v for k, v in mte.items()}, "seconds": round(time.time() - t0, 3)}
        if mte["auc"] is None:
            rec["warning"] = "test AUC undefined: the test split holds one class only"
        is_best = mte["f1"] > best_f1
        best_f1 = max(best_f1, mte["f1"])
        rng = {"gen": gen.get_state(), "torch": torch.get_rng_state()}
        if ctx.enabled:  # each rank's dropout stream, so a resumed run continues every one of them
            rng["torch_ranks"] = ctx.gather(torch.get_rng_state())
        if ctx.main:
            run.write_json("errors.json", _errors(test_paths, yte.numpy(), te_p, epoch))
            ck = {**base, "epoch": epoch, "metrics": rec, "best_f1": best_f1,
                  "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                  "optimizer": opt.state_dict(), "rng": rng,
                  **({"scaler": scaler.state_dict()} if scaler.is_enabled() else {})}
            if is_best:  # best.pt needs no optimiser: it is for using, not resuming
                checkpoint.save(run.best_ckpt, {k: v for k, v in ck.items() if k not in ("optimizer", "rng", "scaler")})
            checkpoint.save(run.last_ckpt, ck)
            run.append_metrics(rec)
        yield rec


def _errors(paths, y, p, epoch) -> dict:
    wrong = mistakes(y, p)
    return {"epoch": epoch, "n_wrong": len(wrong), "n": len(y),
            "images": [{"path": paths[i], "label": int(y[i]), "p_mask": float(p[i])} for i in wrong[:N_ERRORS_KEPT]]}


class TrainingJob(BackgroundJob):
    """Runs fit() on a daemon thread (``jobs.BackgroundJob``). Never touches Streamlit; pages poll it.

    ``history()`` and ``progress()`` hand out copies under a lock, ``stop()`` sets an Event that
    fit() polls before every batch, and a failure becomes status "failed" with the error text,
    also in the run's status file. ``slots`` makes extra jobs wait visibly as "queued".
    """
    USER_ERRORS = (ValueError, TrainingFailed, OSError)

    def __init__(self, cfg: TrainConfig, run: Run, slots: threading.Semaphore | None = None):
        super().__init__(f"train-{run.id}", slots)
        self.cfg, self.run = cfg, run
        self._history: list[dict] = list(run.metrics())

    def start(self) -> "TrainingJob":
        self.run.set_status("queued")
        return super().start()

    def history(self) -> list[dict]:
        with self._lock:
            return list(self._history)

    def _set(self, status: str, error: str | None = None) -> None:
        self.status, self.error = status, error
        try:
            self.run.set_status(status, **({"error": error} if error else {}))
        except OSError:
            # Disk full: the in-memory status still informs the pages; on disk the run reads
            # 'running' until this process ends, then 'interrupted' - never a torn file.
            pass

    def _work(self) -> None:
        for rec in fit(self.cfg, self.run, self._stop.is_set, self._set_progress):
            with self._lock:
                self._history.append(rec)
        self._set(end_state(self.run))


class TorchrunJob(TrainingJob):
    """A TrainingJob whose training runs as ``torchrun --nproc_per_node N -m maskrec train --resume
    RUN_DIR`` on this machine (one process per GPU). The run folder is the database: history and
    the final state are read from it (rank 0 writes them); ``stop()`` sends SIGTERM to torchrun,
    which passes it to every rank, and the ranks stop together at the next batch, resumable.
    Output goes to ``torchrun.log`` in the run folder; how it was launched to ``launch.json``."""

    def __init__(self, cfg: TrainConfig, run: Run, slots: threading.Semaphore | None = None, nproc: int = 2):
        super().__init__(cfg, run, slots)
        self.nproc = nproc
        self._proc: subprocess.Popen | None = None
        self._signalled = False

    def stop(self) -> None:
        self._stop.set()
        self._signal()

    def _signal(self) -> None:
        with self._lock:  # once: a second SIGTERM would cut torchrun's graceful shutdown short
            if self._proc is not None and not self._signalled and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                self._signalled = True

    def history(self) -> list[dict]:
        return self.run.metrics()

    def progress(self) -> BatchProgress | None:
        return None  # batch progress stays inside the ranks; epochs show through history()

    def _work(self) -> None:
        cmd = distributed.torchrun_command(self.run.dir, self.nproc)
        self.run.write_json("launch.json", {"nproc": self.nproc, "command": cmd})
        with open(self.run.dir / "torchrun.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            with self._lock:
                self._proc = proc
            if self._stop.is_set():  # stopped while starting
                self._signal()
            code = proc.wait()
        st = self.run.status()
        if st.get("state") in ("done", "stopped", "failed"):  # rank 0's own last word
            self.status, self.error = st["state"], st.get("error")
        else:  # torchrun or a rank died before rank 0 could say how it ended
            tail = (self.run.dir / "torchrun.log").read_text(errors="replace").strip().splitlines()[-15:]
            self._set("failed", f"torchrun exited with code {code}:\n" + "\n".join(tail))


def launched_nproc(run: Run) -> int:
    """How many processes trained this run last (1 unless a TorchrunJob launched it)."""
    return int((run.read_json("launch.json") or {}).get("nproc", 1))


class JobRegistry:
    """Every TrainingJob of this process, by run id. Shared by all browser sessions (the pages keep
    it in ``st.cache_resource``); ``max_parallel`` jobs train at once, the rest queue visibly."""

    def __init__(self, max_parallel: int = 1):
        self._jobs: dict[str, TrainingJob] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_parallel)

    def start(self, cfg: TrainConfig, run: Run, nproc: int = 1) -> TrainingJob:
        """Train run in this process, or with nproc > 1 as a torchrun job of nproc processes."""
        with self._lock:
            old = self._jobs.get(run.id)
            if old is not None and old.alive:
                return old  # a second click or a second tab must not start the run twice
            job = TorchrunJob(cfg, run, self._slots, nproc) if nproc > 1 else TrainingJob(cfg, run, self._slots)
            self._jobs[run.id] = job
        return job.start()

    def get(self, run_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def active(self) -> list[TrainingJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.alive]
