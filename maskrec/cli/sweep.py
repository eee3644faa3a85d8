"""``sweep --net NET --data DATA --trials N`` or ``sweep --resume SWEEP_DIR``: Optuna trials of a
net's recipe, judged on a validation split carved from the train data; one line per trial."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from maskrec.config import PRESETS
from maskrec.train.sweep import DEFAULT_EPOCHS, SweepConfig, best, new_sweep, open_sweep, run_sweep
from maskrec.cli.common import UserError, progress_bar, stop_on_signals


def add_arguments(s):
    s.add_argument("--net", help=" or ".join(PRESETS))
    s.add_argument("--data", help="dataset folder or .zip (default: the built-in demo data)")
    s.add_argument("--trials", type=int, default=20, help="trials to finish, complete or pruned (default 20)")
    s.add_argument("--epochs", type=int, help="most epochs a trial trains (default: "
                                              + ", ".join(f"{n} {e}" for n, e in DEFAULT_EPOCHS.items()) + "); "
                                              "trials draw their own from [EPOCHS/2, EPOCHS]")
    s.add_argument("--timeout", type=float, metavar="S", help="start no trial after S seconds")
    s.add_argument("--pruner", choices=["median", "halving", "none"], default="median",
                   help="median (default): stop a trial below the median of earlier ones at an epoch; "
                        "halving: successive halving")
    s.add_argument("--val-fraction", type=float, help="validation share of the train split (default 0.15)")
    s.add_argument("--seed", type=int, default=0, help="the sampler's seed and every trial's training seed")
    s.add_argument("--drawn-masks", type=float, metavar="SHARE", help="every trial trains with masks drawn on this "
                                                                      "share of the bare train faces (see train)")
    s.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--json", action="store_true",
                   help='one JSON line per finished trial, then {"best": {"run", "params", "value", "trial"}}')
    s.add_argument("--out", metavar="SWEEP_DIR", help="sweep folder (default sweeps/<time>-<net>-<id>)")
    s.add_argument("--resume", metavar="SWEEP_DIR", help="continue a sweep that was stopped or killed")


def run(a):
    if a.resume:
        try:
            sw = open_sweep(a.resume)
        except FileNotFoundError as e:
            raise UserError(str(e))
    else:
        if not a.net:
            raise UserError(f"sweep needs --net ({' or '.join(PRESETS)}), or --resume SWEEP_DIR")
        cfg = SweepConfig(net=a.net, data=a.data or "", trials=a.trials, epochs=a.epochs or 0,
                          timeout=a.timeout or 0.0, pruner=a.pruner, seed=a.seed, device=a.device or "auto",
                          drawn_masks=a.drawn_masks or 0.0,
                          **({"val_fraction": a.val_fraction} if a.val_fraction is not None else {}))
        try:
            sw = new_sweep(cfg.validate(), sweep_dir=Path(a.out) if a.out else None)
        except (ValueError, FileExistsError) as e:
            raise UserError(str(e))
    if not a.json:
        print(f"sweep {sw.dir}: {sw.config().net}, {sw.config().trials} trials, judged on validation F1")
    bar = progress_bar("trial")

    def on_progress(n, p):
        bar(p.batch, p.batches, f"trial {n} epoch {p.epoch} {p.phase}" if p.epoch else f"trial {n} loading data")
    with stop_on_signals() as stop:
        try:
            for t in run_sweep(sw, stop.is_set, on_progress):
                if a.json:
                    print(json.dumps(t._asdict()), flush=True)
                else:
                    v = "" if t.value is None else f" val F1 {t.value:.4f}"
                    print(f"trial {t.number:>3} {t.state:<8} after {t.epochs:>3} epochs{v}  {t.run}", flush=True)
        except RuntimeError as e:  # another live process runs this sweep
            raise UserError(str(e))
    b = best(sw)
    if a.json:
        print(json.dumps({"best": b}), flush=True)
    elif b:
        print(f"best: trial {b['trial']} val F1 {b['value']:.4f} {b['run']} {json.dumps(b['params'])}")
    if stop.is_set():
        print(f"stopped; resume with: python -m maskrec sweep --resume {sw.dir}", file=sys.stderr)
        return 130
    return 0
