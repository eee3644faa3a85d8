"""infer: per-face latency at batch 1 and throughput at batch 8 (Predictor) against a naive
per-face call (``evaluation.baselines.naive_predict``: PIL preprocessing, default threads,
no_grad): first the default engine (measured by ``engine_probe``, as the app picks it), then
each other engine that runs here, tagged [name]."""
from __future__ import annotations

from pathlib import Path

from evaluation.baselines import naive_predict
from maskrec.infer import engines
from maskrec.infer.predictor import Predictor
from maskrec.models.build import build

from bench.common import faces_for, median_ms, row


def naive_model(pred: Predictor):
    """The checkpoint's weights in a plain eager fp32 model, for the naive baseline."""
    model = build(pred.net, dropout=pred.config.get("dropout"))
    model.load_state_dict(pred.model.state_dict())
    return model.eval()


def bench_infer(quick: bool, checkpoints: dict[str, Path]) -> list[dict]:
    """Per net: the Predictor as the Recognizer runs it (the default engine, threads by
    engines.threads_for), then every engine that runs here, each against the same naive baseline."""
    rows = []
    n = 20 if quick else 100
    bf16 = engines.bf16_supported()
    for net, path in checkpoints.items():
        default = Predictor.load(path).engine_name  # what the app runs: measured here (engine_probe)
        pred = Predictor.load(path, engine="torch")
        model = naive_model(pred)
        size = pred.input_size
        one, eight = faces_for(size, 1), faces_for(size, 8)
        base1 = median_ms(lambda: naive_predict(model, size, one), n)
        base8 = median_ms(lambda: naive_predict(model, size, eight), n)
        # the goals: Net1 0.5 ms a face; Net2 5 ms where bf16 runs, 20 ms on AVX2 alone
        goal_ms = 0.5 if net == "net1" else 5.0 if bf16 else 20.0
        for name in [default] + [e for e in engines.available() if e != default]:
            p = Predictor.load(path, engine=name)
            ours1 = median_ms(lambda: p.predict_proba(one), n)  # the first call builds the engine
            ours8 = median_ms(lambda: p.predict_proba(eight), n)
            tag = "" if name == default else f" [{name}]"
            note = f"default engine {name}" if name == default else engines.ENGINES[name].note
            rows.append(row("infer", f"{net} one face, batch 1{tag}", ours1, base1, "ms", False, None,
                            f"goal <= {goal_ms:g} ms: {'met' if ours1 <= goal_ms else 'missed'}; {note}"))
            rows.append(row("infer", f"{net} 8 faces, one batch{tag}", 8000 / ours8, 8000 / base8, "faces/s",
                            True, 2.0 if name == default else None, note))
    return rows
