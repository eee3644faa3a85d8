"""Training: a plain loop cut into functions (what runs it and records how it ended, as the run's
state, is ``run.train_run``; its recipe's pieces are in ``recipe``, the data it loads in ``splits``).

``fit(cfg, run)`` trains and yields one record per epoch (after it is safely on disk)::

    for rec in fit(PRESETS["net1"], new_run(cfg)):
        print(rec["epoch"], rec["test_f1"])

Train metrics are taken over the epoch's batches as the model learns them (the loss the
optimiser saw); test metrics come from a full pass in eval mode. ``should_stop`` is polled before
every batch, so a stop takes effect within one batch. Calling ``fit`` again on a run that holds a
``last.pt`` resumes after the epoch it committed (``Run.save_epoch``: a kill mid-save loses nothing),
with optimiser and random state restored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from maskrec.models import checkpoint
from maskrec.train import distributed
from maskrec.config import CLASS_NAMES, TrainConfig
from maskrec.data import batch_to_float, preprocessing_info
from maskrec.train.distill import Teacher, soft_nll
from maskrec.core.metrics import epoch_metrics, mistakes
from maskrec.models.build import build, spec
from maskrec.train.recipe import augment_batch, ema_avg, low_res, lr_at, mixup_draw, nll  # also imported from here by tests
from maskrec.train.runs import Run
from maskrec.train.splits import BatchProgress, Splits, load_data  # BatchProgress: also imported from here

N_ERRORS_KEPT = 48  # misclassified test images kept per epoch for the gallery
# Two classes start near ln 2 = 0.69; a mean batch loss this high means the true class gets
# probability e^-100: the run has diverged even if the numbers are still finite.
DIVERGED_LOSS = 100.0


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


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on device; on CUDA through pinned memory, so the copy runs asynchronously."""
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def _prepare(xb: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 rows -> the float batch the network takes, on the device, in its memory layout."""
    xb = batch_to_float(_to(xb, device))
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


class Precision:
    """The mixed-precision seam: the autocast a forward pass runs under, and the loss scaler fp16
    needs against gradient underflow (a pass-through in fp32 and bf16)."""

    def __init__(self, name: str, device: torch.device):
        assert name in ("fp32", "bf16", "fp16"), name
        self.name, self.device_type = name, device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")

    def autocast(self):
        dtype = torch.float16 if self.name == "fp16" else torch.bfloat16
        return torch.autocast(self.device_type, dtype=dtype, enabled=self.name != "fp32")


FP32 = Precision("fp32", torch.device("cpu"))


def pick_precision(cfg: TrainConfig, device: torch.device) -> Precision:
    """bf16 where the config or the hardware says so; fp16 with loss scaling only on CUDA GPUs
    without bf16 when the config leaves it open; else fp32."""
    bf16 = speed_settings(cfg, device)[1]
    fp16 = device.type == "cuda" and not bf16 and cfg.bf16 is None
    return Precision("bf16" if bf16 else "fp16" if fp16 else "fp32", device)


@dataclass
class TrainState:
    """Everything a training step reads and changes, in one value: what a checkpoint saves and a
    resume restores. ``model`` is the bare network (evaluated and saved); ``net`` is what the step
    runs: the model itself, or under torchrun its DistributedDataParallel wrapper (the DDP seam,
    with ``ctx``, which splits batches and adds up results across processes)."""
    model: nn.Module
    net: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator  # the data order and augmentation draws
    precision: Precision
    device: torch.device
    channels_last: bool
    ctx: distributed.Context = distributed.SINGLE
    epoch: int = 0  # last finished epoch
    best_f1: float = -1.0
    ema: AveragedModel | None = None  # the averaged copy of the weights, when cfg.ema is on
    teacher: Teacher | None = None  # the nets whose P(class) is a soft target, when cfg.distill names some

    @property
    def eval_model(self) -> nn.Module:
        """What is evaluated and saved for use: the weights' moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        return _prepare(xb, self.device, self.channels_last)

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on loss (under torchrun DDP averages the ranks' gradients in backward)."""
        scaler = self.precision.scaler
        self.opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(self.opt)
        scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def saved(self) -> dict:
        """Weights (on the CPU), optimiser, random state and loss scaler, for last.pt."""
        rng = {"gen": self.gen.get_state(), "torch": torch.get_rng_state()}
        if self.ctx.enabled:  # each rank's dropout stream, so a resumed run continues every one of them
            rng["torch_ranks"] = self.ctx.gather(torch.get_rng_state())
        scaler = self.precision.scaler
        cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}
        # "model" is what a Predictor loads (the average, with EMA); "train_model" what training resumes from
        ema = {"train_model": cpu(self.model), "ema_n": int(self.ema.n_averaged)} if self.ema is not None else {}
        return {"epoch": self.epoch, "best_f1": self.best_f1, "model": cpu(self.eval_model), **ema,
                "optimizer": self.opt.state_dict(), "rng": rng,
                **({"scaler": scaler.state_dict()} if scaler.is_enabled() else {})}

    def restore(self, ck: dict) -> None:
        """Continue from a last.pt: under torchrun every rank reads the same file."""
        self.model.load_state_dict(ck.get("train_model", ck["model"]))
        if self.ema is not None:
            self.ema.module.load_state_dict(ck["model"])
            self.ema.n_averaged.fill_(ck.get("ema_n", 1))
        self.opt.load_state_dict(ck["optimizer"])
        self.gen.set_state(ck["rng"]["gen"])
        torch_states = ck["rng"].get("torch_ranks") or [ck["rng"]["torch"]]
        if self.ctx.rank < len(torch_states):
            torch.set_rng_state(torch_states[self.ctx.rank])
        if "scaler" in ck:
            self.precision.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.best_f1 = ck["epoch"], ck.get("best_f1", -1.0)


EMA_WARM = 1_000_000  # an n where ema_avg's warm-up (1 + n) / (10 + n) is 0.999991: past any decay in use (0.99-0.999)


def new_state(cfg: TrainConfig, device: torch.device, ctx: distributed.Context = distributed.SINGLE,
              resume_from=None) -> TrainState:
    """A seeded model and optimiser (or the ones of a last.pt), wrapped for DDP under torchrun."""
    channels_last = speed_settings(cfg, device)[0]
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    resuming = resume_from is not None and resume_from.exists()
    model = build(cfg.net, dropout=cfg.dropout)
    if cfg.init and not resuming:  # a resumed fine-tune reads its own last.pt, whatever became of the file it started from
        checkpoint.load_weights(model, cfg.init, cfg.net)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if ctx.rank:  # ranks > 0 draw their own dropout masks; rank 0 keeps the single-process stream
        torch.manual_seed(cfg.seed + ctx.rank)
    s = TrainState(model, model, opt, gen, pick_precision(cfg, device), device, channels_last, ctx)
    if cfg.distill:
        s.teacher = Teacher(cfg.teachers(), device, channels_last)
    if cfg.ema:  # buffers too: BatchNorm's running statistics follow the averaged weights
        s.ema = AveragedModel(model, avg_fn=ema_avg(cfg.ema), use_buffers=True)
        if cfg.init:  # the decay's warm-up is there to forget random weights; trained ones belong in the average
            s.ema.n_averaged.fill_(EMA_WARM)
    if resuming:
        s.restore(checkpoint.load(resume_from, map_location=device))
    s.net = ctx.wrap(model, device)  # DistributedDataParallel under torchrun, else the model itself
    return s


def train_one_epoch(s: TrainState, X: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, epoch: int,
                    should_stop: Callable[[], bool] = lambda: False,
                    on_batch: Callable[[int, int], None] = lambda done, total: None
                    ) -> tuple[float, np.ndarray, np.ndarray] | None:
    """One pass over X in a seeded random order. Returns (mean loss, labels, p_mask) or None if stopped.

    Reads as one process: under torchrun (``s.ctx``, see maskrec.train.distributed) each global batch of
    cfg.batch_size is split across the ranks, and the loss, labels and scores cover every rank's images."""
    ctx = s.ctx
    s.net.train()
    order = torch.randperm(len(X), generator=s.gen)
    batches = ctx.batches(order, cfg.batch_size, should_stop)
    total, seen, labels, scores = 0.0, 0, [], []
    for batch in batches:
        xb, yb = s.prepare(X[batch.rows]), _to(y[batch.rows], s.device)
        if cfg.augment:
            xb = augment_batch(xb, s.gen, n=batch.size, keep=batch.keep, strength=cfg.augment_strength)
        if cfg.low_res:
            xb = low_res(xb, s.gen, cfg.low_res, n=batch.size, keep=batch.keep)
        if cfg.mixup:
            lam, partner = mixup_draw(cfg.mixup, s.gen, batch.size, batch.keep)
            partner = partner.to(s.device)
            xb = lam * xb + (1 - lam) * xb[partner]
        with s.precision.autocast():
            out = s.net(xb)
        loss = nll(out.float(), yb, cfg.label_smoothing)
        if cfg.mixup:
            loss = lam * loss + (1 - lam) * nll(out.float(), yb[partner], cfg.label_smoothing)
        if s.teacher is not None:  # the teachers judge the very images the student saw, mixup's blends too
            q = s.teacher.probs(xb, s.precision.autocast)
            loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * soft_nll(out.float(), q)
        mean = ctx.batch_mean(loss.item(), batch)  # the whole batch's, equal on every rank
        if not math.isfinite(mean) or mean > DIVERGED_LOSS:
            raise TrainingFailed(f"training diverged: the loss reached {mean:.4g} in batch {batch.index + 1}; "
                                 f"lower the learning rate (now {cfg.lr})")
        for group in s.opt.param_groups:
            group["lr"] = lr_at(cfg, epoch - 1 + batch.index / len(batches))
        s.step(loss * batch.weight)
        total += mean * batch.size
        seen += batch.size
        labels.append(yb.cpu())
        scores.append(out.detach().float()[:, 1].exp().cpu())
        on_batch(batch.index + 1, len(batches))
    if batches.stopped:
        return None
    return total / seen, ctx.cat(torch.cat(labels).numpy()), ctx.cat(torch.cat(scores).numpy())


@torch.inference_mode()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, device: torch.device, *,
             batch_size: int = 512, channels_last: bool = False, precision: Precision = FP32,
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
        with precision.autocast():
            out = model(xb).float()
        total += F.nll_loss(out, _to(y[sl], device), reduction="sum").item()
        scores.append(out[:, 1].exp().cpu())
        if on_batch:
            on_batch(b + 1, n_batches)
    p = torch.cat(scores).numpy() if scores else np.zeros(0, np.float32)
    return ctx.sum(total) / max(n_all, 1), ctx.interleave(p)


def fit(cfg: TrainConfig, run: Run, should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[BatchProgress], None] = lambda p: None) -> Iterator[dict]:
    """Train cfg into run (resuming from its last.pt if there is one); yield one record per epoch.

    Under torchrun every rank calls it (see maskrec.train.distributed): each trains on its share of every
    batch through DistributedDataParallel, all yield the same records, rank 0 alone writes the run."""
    cfg.validate()
    ctx = distributed.current()
    device = pick_device(cfg.device, ctx.local_rank if ctx.enabled else None)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: cuDNN times its kernels once, keeps the fastest
    d = load_data(cfg, run, ctx, on_progress)
    used = d.ds.overrides._asdict() if d.ds.overrides is not None else None
    if used != cfg.overrides:  # the run's config names the review decisions it trains with
        cfg = replace(cfg, overrides=used)
        if ctx.main:
            run.write_config(cfg)
    if ctx.main:  # a save a kill cut short is finished first, from the last.pt this resumes from
        run.recover()
    s = new_state(cfg, device, ctx, resume_from=run.last_ckpt)
    about = _about(cfg, s, d)
    for epoch in range(s.epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        cb = lambda done, total, phase="train": on_progress(BatchProgress(epoch, done, total, phase, t0))
        X = d.views.draw(s.gen) if d.views is not None else d.Xtr  # one framing per face this epoch
        tr = train_one_epoch(s, X, d.ytr, cfg, epoch, should_stop, cb)
        if tr is None:
            return
        ctx.sync_buffers(s.eval_model)  # the test pass and the checkpoint use rank 0's BatchNorm statistics
        judged = lambda X, y, phase: evaluate(s.eval_model, X, y, device, batch_size=cfg.eval_batch_size,
                                              channels_last=s.channels_last, precision=s.precision,
                                              on_batch=lambda done, total: cb(done, total, phase), ctx=ctx)
        val = {}
        if d.Xva is not None:
            va_loss, va_p = judged(d.Xva, d.yva, "validation")
            val = {f"val_{k}": v for k, v in epoch_metrics(d.yva.numpy(), va_p, va_loss).items()}
        te_loss, te_p = judged(d.Xte, d.yte, "test")
        mte = epoch_metrics(d.yte.numpy(), te_p, te_loss)
        rec = {"epoch": epoch, **{f"train_{k}": v for k, v in epoch_metrics(tr[1], tr[2], tr[0]).items()},
               **val, **{f"test_{k}": v for k, v in mte.items()}, "seconds": round(time.time() - t0, 3)}
        if mte["auc"] is None:
            rec["warning"] = "test AUC undefined: the test split holds one class only"
        judge = val["val_f1"] if val else mte["f1"]  # best.pt: picked on validation when there is one
        is_best = judge > s.best_f1
        s.epoch, s.best_f1 = epoch, max(s.best_f1, judge)
        # every rank: saved() gathers the ranks' random state. The epoch's record rides in last.pt,
        # whose rename commits the epoch (runs.Run.save_epoch)
        ck = {**about, **s.saved(), "metrics": rec, "best": is_best,
              "errors": _errors(d.test_paths, d.yte.numpy(), te_p, epoch)}
        if ctx.main:
            run.save_epoch(ck)
        yield rec


def _about(cfg: TrainConfig, s: TrainState, d: Splits) -> dict:
    """What a checkpoint says about itself besides its weights: how to use it, how it was made."""
    size = spec(cfg.net).input_size
    return {"net": cfg.net, "input_size": size, "preprocessing": preprocessing_info(size),
            "classes": list(CLASS_NAMES), "threshold": 0.5, "config": cfg.to_dict(),
            # the precision the weights were trained in (they are saved as fp32 whatever it was)
            "precision": s.precision.name, "channels_last": s.channels_last,
            "data": {"root": str(d.ds.root), "layout": d.ds.layout, "held_out": d.ds.held_out,
                     "counts": {k: {0: int((v == 0).sum()), 1: int((v == 1).sum())}  # what it trained on
                                for k, v in (("train", d.ytr), ("test", d.yte))},
                     "skipped": len(d.ds.skipped),
                     **({"val": {"fraction": cfg.val_fraction, 0: int((d.yva == 0).sum()), 1: int((d.yva == 1).sum())}}
                        if d.Xva is not None else {})}}


def _errors(paths, y, p, epoch) -> dict:
    wrong = mistakes(y, p)
    return {"epoch": epoch, "n_wrong": len(wrong), "n": len(y),
            "images": [{"path": paths[i], "label": int(y[i]), "p_mask": float(p[i])} for i in wrong[:N_ERRORS_KEPT]]}
