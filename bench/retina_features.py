"""Issue 34 item 5's measured try: does RetinaFace's backbone (MobileNet-0.25 trained on WIDER FACE,
tens of thousands of real, occluded faces) rank masked vs bare faces better than our nets?

    python bench/retina_features.py [--size 96] [--data DEV:SCENES:MORE] [--json-out FILE]

Each face crop (the training data's own crops, decoded at ``--size``) goes through the shipped
RetinaFace ONNX model up to its three backbone stages (64, 128 and 256 channels); each stage is
averaged over space and the 448 numbers are one face's features. A logistic regression
(scikit-learn, standardised features) learns mask vs bare on the train faces (validation carved as
every run carves it: the declared validation scenes and 15% of the web crops) and is judged on the
validation scenes' faces: AUC and the share of masked faces found while at most 1/2/3/5% of bare
faces are called mask, beside the same figures of the checkpoints given with ``--compare``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec.data import discover, load_split  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402
from maskrec.data.scenes import is_scene_face  # noqa: E402
from maskrec.faces.retinaface import RetinaFace, retinaface_onnx  # noqa: E402
from maskrec.infer.predictor import Predictor  # noqa: E402
from maskrec.data.validation import carve  # noqa: E402

D = "../shared/datasets/facemask-dev:../shared/datasets/facemask-scenes-dev:../shared/datasets/facemask-scenes-more"
CAPS = (0.01, 0.02, 0.03, 0.05)


def stage_session(threads: int = 1):
    """An onnxruntime session of RetinaFace whose outputs are the last activation of each backbone stage."""
    import onnx
    import onnxruntime as ort
    m = onnx.load_from_string(retinaface_onnx())
    last = {}
    for n in m.graph.node:
        for stage in ("stage1", "stage2", "stage3"):
            if n.op_type == "LeakyRelu" and f"/fx/{stage}/" in n.output[0]:
                last[stage] = n.output[0]
    del m.graph.output[:]
    for stage in ("stage1", "stage2", "stage3"):
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(last[stage]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def features(sess, X: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 3, S, S) uint8 RGB -> (N, 448): RetinaFace's preprocessing (BGR minus its mean), then
    each stage's mean over space."""
    mean = np.float32(RetinaFace.MEAN_BGR)[None, :, None, None]
    out = []
    name = sess.get_inputs()[0].name
    for i in range(0, len(X), batch):
        x = X[i:i + batch][:, ::-1].astype(np.float32) - mean
        outs = sess.run(None, {name: np.ascontiguousarray(x)})
        out.append(np.concatenate([o.mean(axis=(2, 3)) for o in outs], 1))
    return np.concatenate(out)


def ranking(y: np.ndarray, p: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score, roc_curve
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    return {"auc": float(roc_auc_score(y, p)),
            **{f"found_at_{c:g}": float(tpr[np.where(fpr <= c)[0][-1]]) for c in CAPS}}


def main(argv=None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=D)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--compare", nargs="*", default=[])
    ap.add_argument("--json-out")
    a = ap.parse_args(argv)
    ds = discover(a.data)
    X, y, paths = load_split(ds, "train", a.size)
    X, y = X.numpy(), y.numpy()
    tr, va = carve(paths, y, 0.15)
    scene_va = np.array([i for i in va if is_scene_face(paths[i])])
    t = time.perf_counter()
    F = features(stage_session(), X)
    secs = time.perf_counter() - t
    rows = {}
    for C in (0.1, 1.0, 10.0):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
        clf.fit(F[tr], y[tr])
        rows[f"retinaface stages + logistic C={C:g}"] = ranking(y[scene_va], clf.predict_proba(F[scene_va])[:, 1])
    for ck in a.compare:
        pred = Predictor.load(ck, exact=True)
        Xc, yc, pc = load_split(ds, "train", pred.input_size)
        rows[Path(ck).name] = ranking(yc.numpy()[scene_va], pred.predict_tensor(Xc[scene_va]))
    print(f"validation scenes' faces: {len(scene_va)} ({int((y[scene_va] == 0).sum())} bare); features "
          f"{F.shape[1]} at {a.size} px, {1000 * secs / len(X):.2f} ms a face; train faces {len(tr)}")
    print(f"{'':<42} {'AUC':>7} " + " ".join(f"{'found@' + format(c, 'g'):>10}" for c in CAPS))
    for name, r in rows.items():
        print(f"{name:<42} {r['auc']:7.4f} " + " ".join(f"{r[f'found_at_{c:g}']:10.4f}" for c in CAPS))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "size": a.size, "val_scene_faces": len(scene_va),
                                                "ms_per_face": 1000 * secs / len(X), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
