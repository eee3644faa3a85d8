"""Every benchmark of MaskRec, apart from the package it measures (maskrec/ never imports this).

    python -m bench [--json] [--quick] [--data DIR] [--only startup,train,step,infer,tta,frame,busy,scan,video]
    python -m maskrec bench ...                 the same, started by the CLI
    bench.run(["step"])  -> {"machine": ..., "rows": [{"what", "ours", "baseline", "ratio", ...}]}
    python bench/detectors.py | photo_scale.py | pipeline.py | scene_splits.py   detection, scene scripts

Every figure sits next to a baseline measured in the same run, and their ratio (``common.row``:
> 1 means ours is better). The suite's sections, one module each under ``sections/``:
  startup  ``python -m maskrec --help`` and ``models`` as fresh processes against ``import torch``.
  train    whole-process training (``python -m maskrec train``, decoded cache cold and warm) against
           the naive pipeline (``evaluation.baselines``), same seed, same batches; test F1 of both.
  step     training-step images/s of the settings ``fit`` picks here against eager fp32 NCHW,
           with achieved GFLOP/s next to a large matmul measured in the same run.
  infer    per-face latency (batch 1) and throughput (batch 8) of every engine against a naive
           per-face call.
  tta      flip test-time augmentation against none: scores on real faces and ms per face.
  frame    640x480 recognition frames/s against building the models per frame, face by face.
  busy     per face and per frame while a training process uses the same cores.
  scan     header scan of 24,000 generated images (cold and cached) against decoding every file.
  video    a 30 fps clip through ``maskrec.video.process`` against one thread doing it frame by
           frame; then tracking quality on Ken-Burns clips of held-out dev scenes.
"""
from bench.common import cpu_model, machine, row, table
from bench.sections.frame import bench_busy, bench_frame, train_load, training_beside
from bench.sections.infer import bench_infer
from bench.sections.scan import bench_scan, make_scan_set
from bench.sections.startup import bench_startup
from bench.sections.step import bench_step, forward_flops, matmul_gflops
from bench.sections.train import bench_train
from bench.sections.tta import bench_tta, tta_sets
from bench.sections.video import bench_video, video_scenes
from bench.suite import SECTIONS, run

__all__ = ["SECTIONS", "bench_busy", "bench_frame", "bench_infer", "bench_scan", "bench_startup", "bench_step",
           "bench_train", "bench_tta", "bench_video", "cpu_model", "forward_flops", "machine", "make_scan_set",
           "matmul_gflops", "row", "run", "table", "train_load", "training_beside", "tta_sets", "video_scenes"]
