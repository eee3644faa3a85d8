"""The naive baselines the bench measures MaskRec against: the same computation done the slow way.

    naive_train(data, net, epochs, batch)   -> {"test_f1", "test_auc"}  (decodes every JPEG on every access)
    naive_predict(model, size, crops)       -> P(mask) per crop, one eager fp32 call a face
    naive_frame(ckpt, detector, frame)      -> detector and model built per frame, face by face
    naive_video(src, out, rec)              -> frames; decode, detect, classify, draw, encode on one thread

    python -m evaluation.baselines _naive DATA NET EPOCHS BATCH
        naive_train in a process of its own, its result as one JSON line: the whole-process
        baseline that ``bench``'s train section times against ``python -m maskrec train``.

Each baseline computes what its product counterpart computes (same seed, data order, initial weights
and preprocessing; same detector and checkpoint), so where the bench puts the two side by side the
difference is speed, and any difference in accuracy shows.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from maskrec.data import discover, open_rgb, to_input
from maskrec.faces import crop_box
from maskrec.core.metrics import epoch_metrics
from maskrec.models.build import build, spec
from maskrec.live.recognize import Face, FrameResult, Recognizer, Timings, draw
from maskrec.video import CODECS


class _Files(torch.utils.data.Dataset):
    """Items opened and decoded with PIL on every access: no decoded cache."""

    def __init__(self, items, size: int):
        self.items, self.size = items, size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        it = self.items[i]
        x = torch.from_numpy(to_input(open_rgb(it.path), self.size).copy()).permute(2, 0, 1)
        return x.float() / 255, it.label


def naive_train(data: str, net: str, epochs: int, batch: int, seed: int = 0) -> dict:
    """The baseline pipeline: a DataLoader whose Dataset opens and decodes each JPEG with PIL on
    every access, eager fp32 NCHW. Same data order, initial weights and preprocessing as ``fit``
    (same seed), so the test F1 of the two should agree."""
    size = spec(net).input_size
    ds = discover(data)
    train = _Files([it for it in ds.items if it.split == "train"], size)
    test = _Files([it for it in ds.items if it.split == "test"], size)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build(net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=gen).tolist()
        batches = [order[i:i + batch] for i in range(0, len(order), batch)]
        model.train()
        for xb, yb in torch.utils.data.DataLoader(train, batch_sampler=batches):
            loss = F.nll_loss(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        ps, ys = [], []
        with torch.no_grad():
            for xb, yb in torch.utils.data.DataLoader(test, batch_size=512):
                ps.append(model(xb)[:, 1].exp())
                ys.append(yb)
        m = epoch_metrics(torch.cat(ys).numpy(), torch.cat(ps).numpy(), 0.0)
    return {"test_f1": m["f1"], "test_auc": m["auc"]}


def naive_predict(model, size: int, crops) -> np.ndarray:
    """P(mask) of each (H, W, 3) uint8 crop: PIL resize, one eager no_grad call a face, torch's
    default threads."""
    out = []
    with torch.no_grad():
        for c in crops:
            x = torch.from_numpy(np.array(Image.fromarray(c).resize((size, size)))).permute(2, 0, 1)
            out.append(model(x[None].float() / 255)[0, 1].exp().item())
    return np.array(out)


def naive_frame(ckpt: Path, detector: str, frame: np.ndarray) -> None:
    """The frame baseline: detector and model built per frame, each face classified on its own by
    eager fp32 torch."""
    r = Recognizer.load(ckpt, detector, engine="torch")
    res = r.recognize(frame)
    for face in res.faces:
        x0, y0, x1, y1 = face.crop
        r.predictor.predict_proba([frame[y0:y1, x0:x1]])
    draw(frame, res)


def naive_video(src: Path, out: Path, rec) -> int:
    """The baseline: decode, detect, classify each face on its own, draw and encode, one frame
    after another on one thread; no tracking. Returns the frame count."""
    import av  # deferred, as in maskrec.video: naive_train's timed process should not load FFmpeg

    n = 0
    with av.open(str(src)) as inp, av.open(str(out), "w") as o:
        codec, options, _ = CODECS[out.suffix]
        st = None
        for fr in inp.decode(video=0):
            rgb = fr.to_ndarray(format="rgb24")
            found = []
            for b in rec.detector.detect(rgb):
                x0, y0, x1, y1 = crop_box(b, rgb.shape, rec.margin)
                p = float(rec.predictor.predict_proba([rgb[y0:y1, x0:x1]])[0])
                found.append(Face(b, (x0, y0, x1, y1), rec.predictor.labels([p])[0], p))
            shown = draw(rgb, FrameResult(tuple(found), Timings(0, 0), rgb.shape[:2]))
            if st is None:
                st = o.add_stream(codec, rate=30, options=dict(options))
                st.width, st.height, st.pix_fmt = rgb.shape[1], rgb.shape[0], "yuv420p"
            for packet in st.encode(av.VideoFrame.from_ndarray(shown, format="rgb24")):
                o.mux(packet)
            n += 1
        if st is not None:
            for packet in st.encode():
                o.mux(packet)
    return n


if __name__ == "__main__":
    # python -m evaluation.baselines _naive DATA NET EPOCHS BATCH: the train baseline's own process
    _, kind, d, net_, ep, bs = sys.argv
    if kind != "_naive":
        sys.exit(f"usage: python -m evaluation.baselines _naive DATA NET EPOCHS BATCH (not {kind!r})")
    print(json.dumps(naive_train(d, net_, int(ep), int(bs))))
