"""train: whole-process training (``python -m maskrec train``, decoded cache cold and warm) against
the naive pipeline (``evaluation.baselines.naive_train`` in a process of its own: it decodes every
JPEG with PIL on every access), same seed, same batches; test F1 of both, so a speed-up that costs
accuracy shows. Both sides are whole processes, so each pays its own start-up (the startup section
times that part alone)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.common import child_env, row, timed


def bench_train(data: str, quick: bool, work: Path) -> list[dict]:
    rows = []
    plans = [("net1", 1 if quick else 3, 64, 3.0)] + ([] if quick else [("net2", 1, 128, None)])
    for net, epochs, batch, goal in plans:
        env = child_env(MASKREC_HOME=str(work / "home"), MASKREC_CACHE=str(work / f"cache-{net}"))
        shutil.rmtree(env["MASKREC_CACHE"], ignore_errors=True)
        naive_s, out = timed([sys.executable, "-m", "evaluation.baselines", "_naive", data, net,
                              str(epochs), str(batch)], env)
        naive = json.loads(out.strip().splitlines()[-1])
        ours = {}
        for kind in ("cold", "warm"):  # cold: the decoded cache is built inside the timed process
            run_dir = work / f"run-{net}-{kind}"
            shutil.rmtree(run_dir, ignore_errors=True)
            s, _ = timed([sys.executable, "-m", "maskrec", "train", "--net", net, "--data", data,
                          "--epochs", str(epochs), "--batch-size", str(batch), "--seed", "0",
                          "--out", str(run_dir)], env)
            last = json.loads((run_dir / "metrics.jsonl").read_text().strip().splitlines()[-1])
            ours[kind] = (s, last["test_f1"])
        what = f"{net} {epochs}-epoch training, batch {batch}, whole process"
        for kind in ("warm", "cold"):
            s, f1 = ours[kind]
            rows.append(row("train", f"{what} ({kind} cache)", s, naive_s, "s", False,
                            goal if kind == "warm" else None,
                            f"test F1 {f1:.4f} vs naive {naive['test_f1']:.4f} (diff {f1 - naive['test_f1']:+.4f})"))
    return rows
