"""A recipe search: Optuna trials of the report's nets, judged on a validation split, never the test split.

Each trial is an ordinary training run (a run folder under ``runs/``: charts, resume and the Evaluate
page work on it) of a :class:`~maskrec.config.TrainConfig` whose knobs Optuna's sampler picks from
:func:`space`; after each epoch the trial reports its validation F1 and the pruner may stop it. The
sweep itself is a folder, ``sweeps/<id>/`` under ``MASKREC_HOME``::

    sweep.json     what was asked (net, data, trials, epochs, timeout, pruner, seed)
    optuna.db      Optuna's storage (SQLite: no server), the sampler's memory
    trials.json    every trial: number, state, params, value, val AUC, its run folder (rewritten after each)
    owner.json     the process running it, so a second one refuses and a dead one is noticed

Killed part-way (Ctrl-C, a crash, a server restart), a sweep resumes with the same call: the trial
that was running is marked failed in the storage and enqueued again with its parameters, and its run
folder continues from its last finished epoch. Use::

    sw = new_sweep(SweepConfig(net="net1", data="...", trials=20))
    for t in run_sweep(sw):               # one TrialResult per finished trial
        print(t.number, t.state, t.value)
    best(sw)                              # {"run", "params", "value"} of the best complete trial
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import optuna
from optuna.trial import TrialState

from maskrec.core.atomic import atomic_write_text
from maskrec.config import PRESETS, TrainConfig, home
from maskrec.jobs.background import BackgroundJob
from maskrec.models.build import spec
from maskrec.core import process
from maskrec.train.runs import Run, new_run, runs_dir
from maskrec.train.runstate import RunState
from maskrec.train.loop import BatchProgress
from maskrec.train.run import train_run
from maskrec.core.fields import searched

PRUNERS = ("median", "halving", "none")
FAILURES_IN_A_ROW = 3  # trials that raise, one after another: the data or the settings are at fault, not a trial


class SweepFailed(ValueError):
    """The sweep cannot go on: its trials keep failing (the last one's error is the message)."""
DEFAULT_EPOCHS = {"net1": 30, "net2": 40, "resnet18": 30}
VAL_FRACTION = 0.15


def sweeps_dir() -> Path:
    return home() / "sweeps"


@dataclass(frozen=True)
class SweepConfig:
    net: str = "net1"
    data: str = ""  # "" = the built-in demo data
    trials: int = 20
    epochs: int = 0  # the most a trial trains (0: DEFAULT_EPOCHS of the net); trials draw from [epochs/2, epochs]
    timeout: float = 0.0  # seconds; 0 = none. No trial starts after it (the running one finishes)
    pruner: str = "median"
    seed: int = 0  # the sampler's seed and every trial's training seed
    val_fraction: float = VAL_FRACTION
    device: str = "auto"
    drawn_masks: float = 0.0  # fixed for every trial (TrainConfig.drawn_masks), not searched

    def validate(self) -> "SweepConfig":
        problems = []
        if self.net not in PRESETS:
            problems.append(f"unknown net {self.net!r} (choose from {', '.join(PRESETS)})")
        if not 1 <= self.trials <= 10_000:
            problems.append(f"trials must be 1..10000, got {self.trials}")
        if not 0 <= self.epochs <= 1000:
            problems.append(f"epochs must be 0 (the net's default) or 1..1000, got {self.epochs}")
        if self.timeout < 0:
            problems.append(f"timeout must be >= 0 seconds, got {self.timeout}")
        if self.pruner not in PRUNERS:
            problems.append(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if not 0 < self.val_fraction < 0.9:
            problems.append(f"a sweep needs a validation share in (0, 0.9), got {self.val_fraction}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def max_epochs(self) -> int:
        return self.epochs or DEFAULT_EPOCHS.get(self.net, 20)


def space(trial: optuna.Trial, cfg: SweepConfig) -> TrainConfig:
    """The searched recipe: the knobs whose row in TrainConfig's table has a Search (the report's
    learning rate, weight decay, batch, epochs and Net2's dropout, and what a careful practitioner adds
    for small data: augmentation strength, label smoothing, a moving average of the weights, mixup, a
    share shown at low resolution), drawn in the table's draw order. The architecture and the loss
    stay the report's; a knob the net lacks (Net1's dropout) is not drawn."""
    drawn = {}
    for r in searched(TrainConfig):
        s = r.knob.search
        if r.knob.needs and not getattr(spec(cfg.net), r.knob.needs):
            continue
        if s.choices:
            drawn[r.name] = trial.suggest_categorical(r.name, list(s.choices))
        elif r.type is int:  # epochs: shares of the sweep's most epochs, at least 1
            e = cfg.max_epochs if s.of_epochs else 1
            drawn[r.name] = trial.suggest_int(r.name, max(1, int(s.low * e)), int(s.high * e))
        else:
            drawn[r.name] = trial.suggest_float(r.name, s.low, s.high, log=s.log)
    if "augment_strength" in drawn:  # a strength near 0 is no augmentation at all
        aug = drawn["augment_strength"]
        drawn.update(augment=aug > 0.05, augment_strength=max(aug, 0.05))
    return replace(PRESETS[cfg.net], data=cfg.data, seed=cfg.seed, device=cfg.device, schedule="cosine",
                   val_fraction=cfg.val_fraction, drawn_masks=cfg.drawn_masks, **drawn).validate()


class Sweep(NamedTuple):
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.dir / 'optuna.db'}"

    def config(self) -> SweepConfig:
        d = json.loads((self.dir / "sweep.json").read_text())
        known = {f.name for f in fields(SweepConfig)}
        return SweepConfig(**{k: v for k, v in d.items() if k in known})

    def trials(self) -> list[dict]:
        try:
            return json.loads((self.dir / "trials.json").read_text())
        except (OSError, ValueError):
            return []


class TrialResult(NamedTuple):
    """One finished trial, handed to whoever prints or draws it."""
    number: int
    state: str  # "complete" | "pruned" | "failed"
    value: float | None
    params: dict
    run: str
    epochs: int


def new_sweep(cfg: SweepConfig, root: Path | None = None, sweep_dir: Path | None = None) -> Sweep:
    cfg.validate()
    if sweep_dir is None:
        sweep_dir = (root or sweeps_dir()) / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.net}-{secrets.token_hex(2)}"
    sweep_dir = Path(sweep_dir)
    if (sweep_dir / "sweep.json").exists():
        raise FileExistsError(f"{sweep_dir} already holds a sweep; resume it, or pick another folder")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep_dir / "sweep.json", json.dumps(asdict(cfg), indent=2))
    return Sweep(sweep_dir)


def open_sweep(id_or_path: str | Path) -> Sweep:
    p = Path(id_or_path)
    if not (p / "sweep.json").exists():
        p = sweeps_dir() / str(id_or_path)
    if not (p / "sweep.json").exists():
        raise FileNotFoundError(f"no sweep at {id_or_path}")
    return Sweep(p)


def list_sweeps() -> list[Sweep]:
    root = sweeps_dir()
    if not root.exists():
        return []
    found = [Sweep(d) for d in root.iterdir() if (d / "sweep.json").exists()]
    return sorted(found, key=lambda s: (s.dir / "sweep.json").stat().st_mtime, reverse=True)


def _pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":  # stop a trial whose validation F1 is below the median of earlier trials at that epoch
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(1, epochs // 5))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 8))
    return optuna.pruners.NopPruner()


def study(sw: Sweep) -> optuna.Study:
    cfg = sw.config()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = optuna.create_study(study_name="maskrec", storage=sw.storage, direction="maximize", load_if_exists=True,
                             pruner=_pruner(cfg.pruner, cfg.max_epochs))
    # The sampler's random stream starts again in every process: seeded with the seed alone, a resumed
    # sweep would draw its first trials' parameters again. Seed + trials so far keeps it reproducible
    # and new.
    st.sampler = optuna.samplers.TPESampler(seed=cfg.seed + len(st.get_trials(deepcopy=False)), n_startup_trials=4)
    return st


def _claim(sw: Sweep) -> None:
    """Own the sweep for this process (pid + token, as runs are owned): a live owner elsewhere is an
    error; a dead one's running trials are failed in the storage and enqueued again (see :func:`_recover`)."""
    held = owner(sw)
    if held is not None and held.alive and not held.mine:
        raise RuntimeError(f"sweep {sw.id} is being run by process {held.pid}")
    atomic_write_text(sw.dir / "owner.json", json.dumps({**process.stamp(), "since": time.time()}))


def owner(sw: Sweep) -> process.Owner | None:
    """The process owner.json names (alive or not), None when no process owns the sweep."""
    try:
        return process.owner_of(json.loads((sw.dir / "owner.json").read_text()))
    except (OSError, ValueError):
        return None


def _release(sw: Sweep) -> None:
    try:
        (sw.dir / "owner.json").unlink()
    except OSError:
        pass


def _recover(st: optuna.Study) -> None:
    """Trials left running by a process that died: failed in the storage, and the same parameters
    enqueued with their run folder, so the retry continues that run instead of starting over."""
    for t in st.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        st.tell(t.number, state=TrialState.FAIL)
        run = t.user_attrs.get("run")
        if t.params:
            st.enqueue_trial(t.params, user_attrs={"resume_run": run, "retry_of": t.number} if run else
                             {"retry_of": t.number}, skip_if_exists=False)


def _state(t: optuna.trial.FrozenTrial) -> str:
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
            TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}[t.state]


def _write_trials(sw: Sweep, st: optuna.Study) -> None:
    rows = [{"number": t.number, "state": _state(t), "value": t.value, "params": t.params,
             "run": t.user_attrs.get("run"), "epochs": len(t.intermediate_values),
             "retry_of": t.user_attrs.get("retry_of"), "seconds": t.user_attrs.get("seconds"),
             "val_auc": t.user_attrs.get("val_auc")}
            for t in st.get_trials(deepcopy=False)]
    atomic_write_text(sw.dir / "trials.json", json.dumps(rows, indent=1))


def _finished(st: optuna.Study) -> int:
    """Trials that count against the budget: complete or pruned (a failed one is retried)."""
    return sum(1 for t in st.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_sweep(sw: Sweep, should_stop: Callable[[], bool] = lambda: False,
              on_progress: Callable[[int, BatchProgress], None] = lambda n, p: None) -> Iterator[TrialResult]:
    """Run the sweep's remaining trials (resuming a killed one), yielding each as it finishes. A stop
    ends the running trial within one batch; its run folder stays resumable and the trial is retried
    on the next call."""
    cfg = sw.config()
    _claim(sw)
    try:
        st = study(sw)
        _recover(st)
        _write_trials(sw, st)
        started, failures = time.time(), 0
        while _finished(st) < cfg.trials and not should_stop():
            if cfg.timeout and time.time() - started > cfg.timeout:
                break
            trial = st.ask()
            res = _one_trial(sw, st, trial, cfg, should_stop, lambda p: on_progress(trial.number, p))
            _write_trials(sw, st)
            if res is None:  # stopped: the trial is failed in the storage and retried next time
                return
            failures = failures + 1 if res.state == "failed" else 0
            yield res
            if failures >= FAILURES_IN_A_ROW:  # a failed trial does not count against the budget: without
                # this, a dataset that cannot be read would start failing trials for ever
                err = st.trials[res.number].user_attrs.get("error", "unknown error")
                raise SweepFailed(f"{failures} trials in a row failed; the last: {err}")
    finally:
        _release(sw)


def _one_trial(sw: Sweep, st: optuna.Study, trial: optuna.Trial, cfg: SweepConfig, should_stop,
               on_progress) -> TrialResult | None:
    tcfg = space(trial, cfg)
    resume = trial.user_attrs.get("resume_run")
    run = Run(Path(resume)) if resume and (Path(resume) / "config.json").exists() else new_run(tcfg, root=runs_dir())
    trial.set_user_attr("run", str(run.dir))
    run.write_json("sweep.json", {"sweep": str(sw.dir), "trial": trial.number})
    run.recover()  # a trial killed mid-save: its last epoch's line comes back (from last.pt) for the pruner
    for rec in run.metrics():  # a resumed trial's epochs already done, so the pruner sees them
        trial.report(rec["val_f1"], rec["epoch"])
    pruned = False

    def judged(rec: dict) -> bool:  # True: the pruner ends the trial here
        nonlocal pruned
        trial.report(rec["val_f1"], rec["epoch"])
        pruned = trial.should_prune()
        return pruned
    end = train_run(tcfg, run, RunState(run), should_stop, on_progress, judged)
    if end.state == "failed":
        trial.set_user_attr("error", str(end.exc))
        st.tell(trial, state=TrialState.FAIL)
        return TrialResult(trial.number, "failed", None, trial.params, str(run.dir), len(run.metrics()))
    hist = run.metrics()
    trial.set_user_attr("seconds", round(sum(r.get("seconds", 0) for r in hist), 1))  # a resumed run's too
    if hist and hist[-1].get("val_auc") is not None:  # beside the F1: a net that calls every face bare after
        # one short epoch scores F1 0, and the AUC says whether it has learnt to rank the faces at all
        trial.set_user_attr("val_auc", float(hist[-1]["val_auc"]))
    if pruned:
        run.write_json("sweep.json", {"sweep": str(sw.dir), "trial": trial.number, "pruned_after": len(hist)})
        st.tell(trial, state=TrialState.PRUNED)
        return TrialResult(trial.number, "pruned", None, trial.params, str(run.dir), len(hist))
    if end.state == "stopped":  # a stop: leave the run resumable; the storage retries the trial
        st.tell(trial, state=TrialState.FAIL)
        st.enqueue_trial(trial.params, user_attrs={"resume_run": str(run.dir), "retry_of": trial.number})
        return None
    value = float(hist[-1]["val_f1"])  # the last epoch: the weights a shipped checkpoint would be
    st.tell(trial, value)
    return TrialResult(trial.number, "complete", value, trial.params, str(run.dir), len(hist))


def best(sw: Sweep) -> dict | None:
    """{"run", "params", "value", "trial"} of the best complete trial, None before one completes."""
    done = [t for t in sw.trials() if t["state"] == "complete" and t["value"] is not None]
    if not done:
        return None
    b = max(done, key=lambda t: t["value"])
    return {"run": b["run"], "params": b["params"], "value": b["value"], "trial": b["number"]}


class SweepProgress(NamedTuple):
    """What the Train page draws for a live sweep (immutable, so safe to hand between threads)."""
    trial: int  # the trial training now
    finished: int  # complete or pruned so far
    trials: int
    batch: BatchProgress | None  # the trial's own progress


class SweepJob(BackgroundJob):
    """run_sweep on a daemon thread, for the Train page (never touches Streamlit). ``stop()`` ends
    the running trial within one batch; the trial is retried when the sweep is resumed. It shares
    the training jobs' slots, so a sweep waits visibly behind a training run and the other way round."""

    def __init__(self, sw: Sweep, slots=None):
        super().__init__(f"sweep-{sw.id}", slots)
        self.sweep = sw
        self._results: list[TrialResult] = []

    def results(self) -> list[TrialResult]:
        with self._lock:
            return list(self._results)

    def _work(self) -> None:
        cfg = self.sweep.config()
        base = sum(1 for t in self.sweep.trials() if t["state"] in ("complete", "pruned"))  # before this job

        def on_progress(n, p):
            self._set_progress(SweepProgress(n, base + len(self.results()), cfg.trials, p))
        for res in run_sweep(self.sweep, self._stop.is_set, on_progress):
            with self._lock:
                self._results.append(res)
        self._set("stopped" if self._stop.is_set() else "done")


def figures(sw: Sweep) -> dict:
    """Optuna's own Plotly figures of the sweep: the objective per trial, the objective against
    each parameter (slice plot), and the parameters' importances (fANOVA; needs a few complete
    trials). {} before any trial completes; a figure Optuna cannot draw yet is left out."""
    import optuna.visualization as vis
    st = study(sw)
    if not any(t.state == TrialState.COMPLETE for t in st.get_trials(deepcopy=False)):
        return {}
    out = {}
    for name, draw in (("history", vis.plot_optimization_history), ("slice", vis.plot_slice),
                       ("importance", vis.plot_param_importances)):
        try:
            fig = draw(st)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances of parameters that never varied
        fig.update_layout(title=None, margin=dict(l=10, r=10, t=30, b=10))
        out[name] = fig
    if "history" in out:
        out["history"].update_yaxes(title_text="validation F1")
    return out
