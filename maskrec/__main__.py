"""Command line: ``python -m maskrec COMMAND ...`` (``--help`` on each command).

Exit status: 0 success; 1 when an input failed (``predict`` still processes every image, as cat
and grep do) or a training run failed; 2 a bad command line: a bad option, or a checkpoint,
dataset or run folder that cannot be used (a one-line ``error:`` message, no traceback); 130
interrupted with Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path


class UserError(Exception):
    pass


def _progress_bar(label: str):
    """A ``progress(done, total)`` callback that draws a tqdm bar on stderr, cleared once done
    reaches total. tqdm draws nothing when stderr is not a terminal (``disable=None``), so piped
    output and logs stay clean. A third argument relabels it: ``bar(done, total, "epoch 2 train")``
    starts the bar over under the new label (one bar through a run's phases)."""
    from tqdm import tqdm
    bar, shown = None, label

    def update(done: int, total: int, relabel: str | None = None):
        nonlocal bar, shown
        if bar is not None and relabel is not None and relabel != shown:
            bar.close()
            bar = None
        shown = relabel or shown
        if bar is None:
            if done >= total:
                return  # nothing left to show
            bar = tqdm(total=total, desc=shown, file=sys.stderr, leave=False, disable=None, dynamic_ncols=True)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar = None
    return update


def cmd_demo_data(a):
    from .synth import generate
    out = generate(Path(a.out), n=a.n, seed=a.seed, progress=_progress_bar("drawing"))
    c = out["train"], out["test"]
    print(f"wrote {a.n} demo images to {a.out}: train {c[0][1]} covered / {c[0][0]} bare, "
          f"test {c[1][1]} covered / {c[1][0]} bare")


def cmd_scan(a):
    from .data import discover, scan
    ds = discover(a.data)
    info = scan(ds, progress=_progress_bar("scanning"))
    s = info["summary"]
    if a.json:
        print(json.dumps(s))
        return
    c = s["counts"]
    print(f"{s['root']}  layout: {s['layout']}" + ("  (no test split: 25% held out, stratified, seed 0)" if s["held_out"] else ""))
    print(f"{'split':<6} {'covered(1)':>10} {'bare(0)':>8} {'total':>6}")
    for split in ("train", "test"):
        print(f"{split:<6} {c[split][1]:>10} {c[split][0]:>8} {c[split][0] + c[split][1]:>6}")
    w, h = s["width"], s["height"]
    print(f"width  min/median/max {w.get('min')}/{w.get('median')}/{w.get('max')}   "
          f"height {h.get('min')}/{h.get('median')}/{h.get('max')}")
    print(f"shorter side >= 32 px: {s['share_shorter_side_ge_32']:.1%}   < 128 px: {s['share_shorter_side_lt_128']:.1%}"
          f"   formats: {s['formats']}")
    print(f"skipped: {len(s['skipped'])}")
    for sk in s["skipped"]:
        print(f"  {sk['path']}: {sk['reason']}")


def cmd_models(a):
    from .models import REGISTRY, build, count_weights
    for name, sp in REGISTRY.items():
        print(f"{name}  input {sp.input_size}x{sp.input_size}  weights {count_weights(build(name)):,}  ({sp.note})")


PRECISIONS = {"auto": None, "fp32": False, "bf16": True}  # --precision -> TrainConfig.bf16


def _fmt(v):
    return "  n/a " if v is None else f"{v:.4f}"


def cmd_train(a):
    from . import distributed
    from .config import PRESETS
    from .runs import open_run
    from .train import pick_device
    run = None
    if a.resume:
        try:
            run = open_run(a.resume)
        except FileNotFoundError as e:
            raise UserError(str(e))
        cfg = run.config()
        if a.epochs:
            cfg = replace(cfg, epochs=a.epochs)
    else:
        if not a.net:
            raise UserError("train needs --net (net1 or net2), or --resume RUN_DIR")
        if a.net not in PRESETS:
            raise UserError(f"unknown net {a.net!r} (choose from {', '.join(PRESETS)})")
        over = {k: v for k, v in dict(data=a.data, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                      weight_decay=a.weight_decay, dropout=a.dropout, seed=a.seed,
                                      device=a.device, schedule=a.schedule, val_fraction=a.val_fraction,
                                      augment_strength=a.augment_strength, label_smoothing=a.label_smoothing,
                                      ema=a.ema, mixup=a.mixup, drawn_masks=a.drawn_masks).items() if v is not None}
        if a.augment:
            over["augment"] = True
        if a.precision:
            over["bf16"] = PRECISIONS[a.precision]
        base = PRESETS[a.net]
        if a.recipe == "sized":
            from .config import sized_recipe
            from .train import resolve_data
            base, why = sized_recipe(a.net, sum(resolve_data(replace(base, data=a.data or "")).counts()["train"].values()))
            print(f"recipe sized to the data: {why}")
        cfg = replace(base, **over)
        try:
            cfg.validate()
        except ValueError as e:
            raise UserError(str(e))
    ctx = distributed.SINGLE
    if distributed.launched():  # under torchrun: join the job; rank 0 alone prints and writes the run
        ctx = distributed.setup(pick_device(cfg.device, distributed.local_rank()))
    ok = False
    try:
        rc = _train(a, cfg, run, ctx)
        ok = rc == 0  # every rank got here whole; after a failure a peer may never reach a barrier
        return rc
    finally:
        distributed.teardown(ok)


def _run_folder(a, cfg, run, ctx):
    """Rank 0 creates the run folder (or stores a resumed run's new epoch count) and every rank
    gets its path, so the processes of a torchrun job agree on one folder."""
    from .runs import Run, new_run
    err = None
    if ctx.main:
        try:
            if run is None:
                run = new_run(cfg, run_dir=Path(a.out) if a.out else None)
            elif a.epochs:
                run.write_config(cfg)
        except FileExistsError as e:
            err = str(e)
    where, err = ctx.broadcast((str(run.dir) if run else None, err))
    if err:
        raise UserError(err)
    return Run(Path(where))


def _train(a, cfg, run, ctx):
    from .runstate import RunState
    from .train import TrainingFailed, fit
    say = print if ctx.main else (lambda *args, **kw: None)
    resuming = run is not None
    run = _run_folder(a, cfg, run, ctx)
    if resuming:
        say(f"resuming {run.dir} after epoch {len(run.metrics())} of {cfg.epochs}")
    else:
        say(f"run {run.dir}: {cfg.net} epochs={cfg.epochs} batch={cfg.batch_size} lr={cfg.lr} "
            f"wd={cfg.weight_decay} dropout={cfg.dropout} seed={cfg.seed} data={cfg.data or 'demo'}"
            + (f" processes={ctx.world}" if ctx.enabled else ""))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if ctx.enabled:  # Ctrl-C reaches every rank: all stop at the same batch, the run stays resumable
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    bar = _progress_bar("loading data")  # one bar, relabelled through the run's phases

    def on_progress(p):
        if ctx.main:
            bar(p.batch, p.batches, f"epoch {p.epoch} {p.phase}" if p.epoch else "loading data")

    val = bool(cfg.val_fraction)
    say(f"{'epoch':>5} {'train_loss':>10} {'test_loss':>9} {'train_err':>9} {'test_err':>8} "
        f"{'train_auc':>9} {'test_auc':>8} {'train_f1':>8} " + (f"{'val_f1':>7} " if val else "")
        + f"{'test_f1':>7} {'sec':>6}")
    state = RunState(run, write=ctx.main)  # rank 0 alone writes the run's state
    state.to("running")
    try:
        for r in fit(cfg, run, stop.is_set, on_progress):
            say(f"{r['epoch']:>5} {r['train_loss']:>10.4f} {r['test_loss']:>9.4f} {r['train_error']:>9.4f} "
                f"{r['test_error']:>8.4f} {_fmt(r['train_auc']):>9} {_fmt(r['test_auc']):>8} "
                f"{r['train_f1']:>8.4f} " + (f"{r['val_f1']:>7.4f} " if val else "")
                + f"{r['test_f1']:>7.4f} {r['seconds']:>6.1f}", flush=True)
            if "warning" in r:
                say(f"warning: {r['warning']}")
    except KeyboardInterrupt:
        state.to("stopped")
        print(f"\ninterrupted; resume with: python -m maskrec train --resume {run.dir}", file=sys.stderr)
        return 130
    except TrainingFailed as e:
        state.to("failed", str(e))
        say(f"error: training failed: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        state.to("failed", str(e))
        raise UserError(str(e))
    except Exception as e:
        if not ctx.enabled:
            raise
        # under torchrun this is usually a peer that died (the collective fails or times out)
        state.to("failed", f"rank {ctx.rank}: {type(e).__name__}: {e}")
        print(f"error: rank {ctx.rank} of {ctx.world}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    state.finish()
    judge = "val_f1" if val else "test_f1"  # best.pt is picked on validation when there is one
    best = max(run.metrics(), key=lambda r: r[judge], default=None)
    if best:
        say(f"best {judge.replace('_f1', '')} F1 {best[judge]:.4f} at epoch {best['epoch']}; "
            f"checkpoints: {run.best_ckpt}, {run.last_ckpt}")


def cmd_sweep(a):
    """Optuna trials of a net's recipe, judged on a validation split carved from the train data."""
    from .sweep import SweepConfig, best, new_sweep, open_sweep, run_sweep
    if a.resume:
        try:
            sw = open_sweep(a.resume)
        except FileNotFoundError as e:
            raise UserError(str(e))
    else:
        if not a.net:
            raise UserError("sweep needs --net (net1 or net2), or --resume SWEEP_DIR")
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
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = _progress_bar("trial")

    def on_progress(n, p):
        bar(p.batch, p.batches, f"trial {n} epoch {p.epoch} {p.phase}" if p.epoch else f"trial {n} loading data")
    try:
        for t in run_sweep(sw, stop.is_set, on_progress):
            if a.json:
                print(json.dumps(t._asdict()), flush=True)
            else:
                v = "" if t.value is None else f" val F1 {t.value:.4f}"
                print(f"trial {t.number:>3} {t.state:<8} after {t.epochs:>3} epochs{v}  {t.run}", flush=True)
    except RuntimeError as e:  # another live process runs this sweep
        raise UserError(str(e))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    b = best(sw)
    if a.json:
        print(json.dumps({"best": b}), flush=True)
    elif b:
        print(f"best: trial {b['trial']} val F1 {b['value']:.4f} {b['run']} {json.dumps(b['params'])}")
    if stop.is_set():
        print(f"stopped; resume with: python -m maskrec sweep --resume {sw.dir}", file=sys.stderr)
        return 130
    return 0


def cmd_evaluate(a):
    from .evaluate import score
    from .engines import choose
    from .inference import Predictor
    from .metrics import at_threshold
    pred = Predictor.load(a.checkpoint, engine=a.engine or choose(exact=True))  # the checkpoint's own scores
    res = score(pred, a.data, _progress_bar("decoding"), split=a.split)
    m = at_threshold(res.y, res.p, pred.threshold)
    m.update({"split": res.split, "net": pred.net, "checkpoint": str(a.checkpoint)})
    if a.json:
        print(json.dumps(m))
        return
    print(f"{pred.net} on {a.data} ({m['split']}, n={m['n']}, threshold {pred.threshold:.3f})")
    print(f"F1 {m['f1']:.4f}  AUC {_fmt(m['auc'])}  accuracy {m['accuracy']:.4f}  "
          f"precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"confusion: TP {m['tp']}  FP {m['fp']}  TN {m['tn']}  FN {m['fn']}")


def cmd_threshold(a):
    """Pick the checkpoint's decision threshold on a dataset (its test split, or all of it) and save it
    into the checkpoint, as the Evaluate page's picker does. Pick it on data the net did not train on
    and that you will not report on (a validation folder), so the figures you report stay honest."""
    from .evaluate import score
    from .engines import choose
    from .inference import Predictor, set_threshold
    from .metrics import at_threshold, best_f1_threshold, threshold_for_fpr
    pred = Predictor.load(a.checkpoint, engine=a.engine or choose(exact=True))  # the checkpoint's own scores
    res = score(pred, a.data, _progress_bar("decoding"), split=a.split)
    on = f"{a.data}{' (its validation split, ' + str(len(res.y)) + ' images)' if res.split == 'val' else ''}"
    if a.max_fpr is not None:
        t, how = threshold_for_fpr(res.y, res.p, a.max_fpr), f"false-positive rate <= {a.max_fpr} on {on}"
    else:
        t, how = best_f1_threshold(res.y, res.p), f"best F1 on {on}"
    m = at_threshold(res.y, res.p, t)
    if not a.dry_run:
        set_threshold(a.checkpoint, t, how)
    out = {"threshold": t, "how": how, "saved": not a.dry_run, **m}
    print(json.dumps(out) if a.json else
          f"threshold {t:.4f} ({how}){'' if a.dry_run else ', saved into ' + str(a.checkpoint)}; there: "
          f"F1 {m['f1']:.4f}, bare faces called mask {m['fp']}/{m['fp'] + m['tn']}, masks found {m['tp']}/{m['tp'] + m['fn']}")


def cmd_predict(a):
    """Every image is tried, as cat and grep do: a bad one is reported (on stderr, or as a JSON
    ``{"image", "error"}`` line) and the rest still run; the exit status is 1 if any failed."""
    from .data import BadImage, open_rgb
    from .faces import PHOTO_SIDE, available
    from .inference import TTA, Predictor
    pred = Predictor.load(a.checkpoint, engine=a.engine, tta=TTA if a.tta is None else a.tta)
    if a.detector != "none":  # a detector that cannot run is the command's error (2), not each image's
        why = available()[a.detector]
        if why:
            raise UserError(f"detector {a.detector} cannot run here: {why}")
        _recognizer(pred, a.detector)
    failed = 0
    for path in a.images:
        # Anything one image raises, in decoding or in detection (a cv2 error, a MemoryError), is
        # that image's failure, not the command's; Ctrl-C (not an Exception) still stops them all.
        try:
            img = open_rgb(Path(path), draft=PHOTO_SIDE)
            faces = _in_file_pixels(_faces(pred, img, a.detector), img)
        except Exception as e:
            failed += 1
            why = str(e) if isinstance(e, BadImage) else f"{type(e).__name__}: {e}"
            print(json.dumps({"image": path, "error": why}) if a.json else f"{path}: error: {why}",
                  file=sys.stdout if a.json else sys.stderr, flush=True)
            continue
        if a.json:
            print(json.dumps({"image": path, "faces": faces}), flush=True)
        else:
            desc = ", ".join(f"{f['label']} ({f['p_mask']:.2f}) at {f['box']}" for f in faces) or "no face found"
            print(f"{path}: {desc}", flush=True)
    return 1 if failed else 0


def _in_file_pixels(faces: list[dict], img) -> list[dict]:
    """Boxes found on an image decoded reduced (open_rgb's draft) scaled to the file's pixels, so
    that a box means the same for a 108 MP photo as for a small one."""
    w, h = img.info.get("original_size", img.size)
    if (w, h) == img.size:
        return faces
    sx, sy = w / img.width, h / img.height
    for f in faces:
        x0, y0, x1, y1 = f["box"]
        f["box"] = [round(x0 * sx), round(y0 * sy), min(w, round(x1 * sx)), min(h, round(y1 * sy))]
    return faces


def _faces(pred, img, detector: str | None = None):
    """Every face the detector finds in ``img`` (PIL RGB), classified in one batch:
    ``[{"box": [x0, y0, x1, y1], "label": ..., "p_mask": ...}]``, ``[]`` when none is found.
    ``detector="none"`` treats the whole image as one face (for face crops like the training data)."""
    import numpy as np
    if detector is None:
        from .faces import PHOTO_DEFAULT
        detector = PHOTO_DEFAULT
    if detector == "none":
        p = float(pred.predict_proba([img])[0])
        return [{"box": [0, 0, img.width, img.height], "label": pred.labels([p])[0], "p_mask": round(p, 4)}]
    return _recognizer(pred, detector).recognize(np.asarray(img)).as_json()


def _recognizer(pred, detector: str):
    """The Recognizer of ``pred`` and ``detector``: built once (the detector loads its model), then
    reused for every image."""
    import weakref

    from .faces import make_detector
    from .recognize import Recognizer
    # keyed weakly by the predictor: the cache lives as long as the command's Predictor
    cache = _recognizer.__dict__.setdefault("recognizers", weakref.WeakKeyDictionary())
    rec = cache.setdefault(pred, {}).get(detector)
    if rec is None:
        rec = cache[pred][detector] = Recognizer(pred, make_detector(detector))
    return rec


def cmd_video(a):
    """Follow every face through a video file; one line per person (track), then a summary. The
    annotated video goes to --out. Ctrl-C or SIGTERM stops at the next frame: what was processed
    is still printed and written (exit 130)."""
    from .faces import available
    from .recognize import Recognizer
    from .video import process
    why = available()[a.detector]
    if why:
        raise UserError(f"detector {a.detector} cannot run here: {why}")
    rec = Recognizer.load(a.checkpoint, detector=a.detector)
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = _progress_bar("video")
    try:
        res = process(a.input, rec, a.out, threshold=a.threshold, should_stop=stop.is_set,
                      progress=lambda p: bar(p.frames, max(p.total, p.frames + 1)))
    finally:
        bar(1, 1)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    for w in res.summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    s = res.summary
    if a.json:
        for t in res.tracks:
            print(json.dumps(t.as_json()))
        print(json.dumps({"summary": {k: v for k, v in s.items()}}), flush=True)
    else:
        for t in res.tracks:
            print(f"track {t.track:>3}  {t.first_s:6.1f}-{t.last_s:6.1f} s  {t.frames:>5} frames  {t.label:<8} "
                  f"P(mask) {t.p_mask:.2f}, {t.agree:.0%} of its frames agree")
        print(f"{s['people']} people: {s['mask']} with a mask, {s['no_mask']} without, {s['unsure']} unsure; "
              f"{s['frames']} frames, {s['seconds']:.1f} s of video at {s['fps']:.1f} frames/s"
              + ("; stopped early" if s["status"] == "stopped" else "") + (f"; wrote {res.out}" if res.out else ""))
    return 130 if s["status"] == "stopped" else 0


def cmd_export(a):
    from .export import export
    res = export(a.checkpoint, a.format, a.out)
    print(f"wrote {res['out']} ({res['format']}, {res['net']}, input {res['input']}); "
          f"max |difference| to the checkpoint {res['max_abs_diff']:.2e}")


def cmd_bench(a):
    from . import bench  # here, not at start-up: it imports torch
    sections = [s for s in a.only.split(",") if s] if a.only else list(bench.SECTIONS)
    unknown = [s for s in sections if s not in bench.SECTIONS]
    if unknown:
        raise UserError(f"unknown bench section {', '.join(unknown)} (choose from {', '.join(bench.SECTIONS)})")
    res = bench.run(sections, a.data, a.quick, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if a.json:
        print(json.dumps(res))
    else:
        m = res["machine"]
        print(f"{m['cpu']} ({m['cpus']} CPUs; {' '.join(m['flags'])})")
        print(f"torch {m['torch']}, {m['threads']} threads, {m['cpu_capability']}, bf16 {m['bf16']}; "
              f"data {res['data']}{' (quick)' if a.quick else ''}")
        print(bench.table(res["rows"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m maskrec", description="MaskRec: face-mask recognition (data, training, recognition).")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    from .engines import ENGINES  # the registry of inference engines
    engine_help = ("inference engine (default: the fastest that runs here; evaluate and threshold default to "
                   "an exact fp32 one, so they report the checkpoint's own scores)")

    s = sub.add_parser("demo-data", help="write the built-in demo dataset (report layout)")
    s.add_argument("out", help="folder to write train/ and test/ into")
    s.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("scan", help="counts, image sizes and skipped files of a dataset")
    s.add_argument("data", help="dataset folder or .zip")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("models", help="list the networks")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("train", help="train a network; one line per epoch")
    s.add_argument("--net", help="net1 or net2 (the report's presets fill the rest)")
    s.add_argument("--data", help="dataset folder or .zip (default: the built-in demo data)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--weight-decay", type=float)
    s.add_argument("--dropout", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--augment", action="store_true", help="flip, small crop/scale, colour jitter")
    s.add_argument("--schedule", choices=["constant", "cosine"],
                   help="learning rate: constant (the report's) or cosine (warm-up, then decay to 0)")
    s.add_argument("--augment-strength", type=float, help="scales --augment's ranges (default 1)")
    s.add_argument("--val-fraction", type=float,
                   help="hold this share of the train split out as validation (stratified, by scene and by "
                        "near-duplicate group); best.pt and the sweep are judged on it (default 0: none)")
    s.add_argument("--label-smoothing", type=float, help="smooth the NLL target towards uniform by this (default 0)")
    s.add_argument("--ema", type=float, metavar="DECAY",
                   help="evaluate and save a moving average of the weights with this decay, e.g. 0.995 (default off)")
    s.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup with Beta(ALPHA, ALPHA) (default off)")
    s.add_argument("--drawn-masks", type=float, metavar="SHARE",
                   help="also train on masked copies of this share of the bare train faces, masks drawn by "
                        "their landmarks (over or below the nose: label 1; pulled down to the chin: 0; default 0)")
    s.add_argument("--recipe", choices=["report", "sized"], default="report",
                   help="report: the report's presets (default); sized: the batch scaled to the train split "
                        "(the Train page's default, see README); explicit options override either")
    s.add_argument("--precision", choices=list(PRECISIONS),
                   help="auto (default: bf16 autocast where the CPU or GPU supports it, else fp32), fp32 or bf16; "
                        "weights are saved in fp32 either way")
    s.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<time>-<net>-<id>)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run (with --epochs: a new total)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("sweep", help="search a net's recipe with Optuna, judged on a validation split; one line per trial")
    s.add_argument("--net", help="net1 or net2")
    s.add_argument("--data", help="dataset folder or .zip (default: the built-in demo data)")
    s.add_argument("--trials", type=int, default=20, help="trials to finish, complete or pruned (default 20)")
    s.add_argument("--epochs", type=int, help="most epochs a trial trains (default: net1 30, net2 40); "
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
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("evaluate", help="F1/AUC/accuracy of a checkpoint on a dataset")
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True)
    s.add_argument("--json", action="store_true", help="last line: one JSON object")
    s.add_argument("--engine", choices=list(ENGINES), help=engine_help)
    s.add_argument("--split", choices=["auto", "val"], default="auto",
                   help="auto: the test split, or all images of a dataset without one; val: the validation split "
                        "the checkpoint's run carved out of --data's train split (train --val-fraction)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("threshold", help="pick a checkpoint's decision threshold on a dataset and save it")
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True, help="dataset to pick it on (its test split, or all of it)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--max-fpr", type=float, help="lowest threshold whose rate of bare faces called mask stays <= this")
    how.add_argument("--best-f1", action="store_true", help="the threshold of best F1 (the default)")
    s.add_argument("--dry-run", action="store_true", help="print, do not save")
    s.add_argument("--split", choices=["auto", "val"], default="auto",
                   help="auto: the test split, or all images of a dataset without one; val: the validation split "
                        "the checkpoint's run carved out of --data's train split (train --val-fraction)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--engine", choices=list(ENGINES), help=engine_help)
    s.set_defaults(func=cmd_threshold)

    s = sub.add_parser("predict", help="classify faces in images")
    s.add_argument("checkpoint")
    s.add_argument("images", nargs="+")
    s.add_argument("--json", action="store_true", help="one JSON object per image")
    s.add_argument("--engine", choices=list(ENGINES), help=engine_help)
    s.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation: average each face's P(mask) with its mirror's "
                        "(off by default: no gain measured at the saved thresholds, ~2x the cost a face)")
    from .faces import DEFAULT, DETECTORS  # the registry; cheap: cv2 and torch load on first use
    s.add_argument("--detector", default=DEFAULT, choices=[*DETECTORS, "none"],
                   help=f"face detector (default {DEFAULT}: best recall on photos; "
                        "`python bench/detectors.py` compares them); "
                        "none: the whole image is one face, for face crops")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("video", help="follow and count faces through a video file; an annotated copy to --out")
    s.add_argument("input", metavar="IN", help="video file (mp4, webm, mov, avi, mkv)")
    s.add_argument("--out", required=True, metavar="OUT", help="annotated video to write: .mp4 (H.264) or .webm (VP9)")
    s.add_argument("--json", action="store_true",
                   help='one JSON object per track ({"track", "first_s", "last_s", "frames", "label", "p_mask", '
                        '"agree"}), then {"summary": {...}}')
    s.add_argument("--checkpoint", default=str(Path(__file__).resolve().parent.parent / "checkpoints" / "net1.pt"),
                   help="classifier checkpoint (default: the shipped checkpoints/net1.pt)")
    from .faces import LIVE_DEFAULT
    s.add_argument("--detector", default=LIVE_DEFAULT, choices=list(DETECTORS),
                   help=f"face detector (default {LIVE_DEFAULT}, the live one: fast enough for every frame)")
    s.add_argument("--threshold", type=float, help="P(mask) decision threshold (default: the checkpoint's)")
    s.set_defaults(func=cmd_video)

    s = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (verified)")
    s.add_argument("checkpoint")
    s.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    s.add_argument("out")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("bench", help="speed against baselines measured in the same run (see README, Performance)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--data", help="dataset for the train section (default: facemask-dev beside the repo "
                                  "if present, else the demo data)")
    s.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    s.add_argument("--only", metavar="SECTION,...",
                   help="sections of maskrec.bench.SECTIONS, comma-separated (default: all; an unknown "
                        "name lists them)")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, DataError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    code = main()
    from . import distributed
    if distributed.launched():
        distributed.exit_now(code)
    sys.exit(code)
