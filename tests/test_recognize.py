"""maskrec.live.recognize (detect -> crop -> classify in one batch -> draw), its floor on the dev scenes,
the live buffer and frame callback, Grad-CAM, `predict --json` boxes, and the Recognize page in AppTest.

The dev scenes live in ../shared (present in CI); tests that need them skip with the reason.
"""
from __future__ import annotations

import io
import json
import re
import threading

import numpy as np
import pytest
from PIL import Image

from evaluation.scenes import evaluate_scenes
from maskrec import faces as F
from maskrec.faces import COVERED
from maskrec.infer.predictor import Predictor
from maskrec.live.gradcam import grad_cam
from maskrec.live.recognize import Face, FrameResult, Recognizer, Timings, draw, face_crops
from maskrec.live.channel import LiveBuffer, frame_callback
from maskrec.live.track import min_hits_for
from maskrec.live.webrtc import ice_servers
from tests.conftest import REPO, SCENES

NET1 = REPO / "checkpoints" / "net1.pt"
SCENE = "maksssksksss110"  # 26 faces, 5 covered and 5 bare among those >= 32 px
# Measured with net1.pt + blazeface-tiles + margin 0.15 on the 200 dev scenes: recall 0.905,
# precision 0.971, label accuracy 0.9375 on the 256 matched faces >= 32 px. The floor leaves ~4
# faces of slack for platform differences in resizing and BLAS.
LABEL_ACCURACY_FLOOR = 0.92


def scenes_or_skip():
    pairs = F.scenes(SCENES) if (SCENES / "annotations").is_dir() else []
    if not pairs:
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    return pairs


def scene(name: str = SCENE):
    pairs = dict((img.stem, (img, xml)) for img, xml in scenes_or_skip())
    return pairs[name]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(NET1)


class FixedBoxes:
    """A detector that 'finds' the given boxes, for tests that must not depend on a model."""
    name = "fixed"

    def __init__(self, boxes):
        self.boxes = [F.Box(*b) for b in boxes]

    def detect(self, rgb):
        return list(self.boxes)


def noise(h=240, w=320, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------- pipeline

def test_pipeline_on_a_dev_scene_finds_and_labels_faces():
    img, xml = scene()
    rgb = F.read_rgb(img)
    rec = Recognizer.load(NET1)
    res = rec.recognize(rgb)
    assert isinstance(res, FrameResult) and res.shape == rgb.shape[:2]
    assert len(res.faces) >= 8, len(res.faces)
    labels = {f.label for f in res.faces}
    # the scene has both, and so must the answer (a face inside the street point's band is unsure)
    assert {"mask", "no_mask"} <= labels <= {"mask", "no_mask", "unsure"}
    h, w = rgb.shape[:2]
    for f in res.faces:
        assert 0 <= f.box.x0 < f.box.x1 <= w and 0 <= f.box.y0 < f.box.y1 <= h
        # the crop holds the box (grown by the margin, clipped to the frame)
        assert f.crop[0] <= f.box.x0 and f.crop[1] <= f.box.y0 and f.crop[2] >= f.box.x1 and f.crop[3] >= f.box.y1
        assert 0.0 <= f.p_mask <= 1.0
        assert f.label == rec.op.label(f.p_mask)  # the operating point's threshold and unsure band
    assert res.timings.detect_ms > 0 and res.timings.classify_ms > 0 and res.timings.draw_ms == 0
    # a threshold per call overrides the checkpoint's, without changing the shared recognizer
    assert {f.label for f in rec.recognize(rgb, threshold=0.0).faces} == {"mask"}
    assert rec.threshold == rec.predictor.threshold


def test_all_faces_of_a_frame_are_classified_in_one_batch(predictor, monkeypatch):
    calls = []
    real = predictor.predict_proba

    def spy(images):
        images = list(images)
        calls.append([im.shape for im in images])
        return real(images)

    monkeypatch.setattr(predictor, "predict_proba", spy)
    boxes = [(10, 10, 60, 70, 0.9), (100, 20, 150, 80, 0.8), (200, 100, 260, 170, 0.7)]
    rec = Recognizer(predictor, FixedBoxes(boxes), margin=0.15)
    res = rec.recognize(noise())
    assert len(calls) == 1 and len(calls[0]) == 3
    assert [f.box for f in res.faces] == [F.Box(*b) for b in boxes]
    # each crop is its box grown by 15% a side: 50x60 -> 66x78 (the first one is clipped at 0)
    assert calls[0][1] == (78, 66, 3)
    assert res.faces[0].crop == (2, 1, 68, 79)
    # no face: no classifier call at all
    calls.clear()
    assert Recognizer(predictor, FixedBoxes([])).recognize(noise()).faces == ()
    assert calls == []


def test_a_recognizer_with_flip_tta_scores_each_crop_with_its_mirror():
    boxes = [(10, 10, 60, 70, 0.9), (100, 20, 150, 80, 0.8)]
    rgb = noise(seed=4)
    rec = Recognizer.load(NET1, detector="haar", engine="torch", tta=True)
    assert rec.predictor.tta is True
    rec.detector = FixedBoxes(boxes)
    res = rec.recognize(rgb)
    x = rec.predictor.preprocess(face_crops(rgb, res))  # (2, 3, 32, 32) uint8: what the net saw
    plain, mirrored = (rec.predictor.predict_tensor(v, tta=False) for v in (x, x.flip(3)))
    assert np.abs(np.array([f.p_mask for f in res.faces]) - (plain + mirrored) / 2).max() <= 1e-5
    assert np.abs(plain - mirrored).max() > 1e-3  # noise crops: the mirror matters, so the check can fail


def test_draw_keeps_shape_and_colours_boxes_by_label(predictor):
    rgb = np.full((240, 320, 3), 128, np.uint8)
    res = FrameResult((Face(F.Box(20, 40, 100, 140, 0.9), (0, 0, 1, 1), "mask", 0.97),
                       Face(F.Box(180, 60, 260, 160, 0.8), (0, 0, 1, 1), "no_mask", 0.03)),
                      Timings(1.0, 1.0), (240, 320))
    out = draw(rgb, res)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (rgb == 128).all(), "draw must not write into its input"
    changed = (out != rgb).any(axis=2)
    assert changed.sum() > 500
    # left edge of each box, below its tag: green for mask, red for no mask
    g, r = out[120, 20], out[120, 180]
    assert g[1] > 150 and g[0] < 100 and r[0] > 150 and r[1] < 100
    assert not changed[200:, 120:170].any(), "nothing drawn away from the boxes"

    shown, res2 = Recognizer(predictor, FixedBoxes([(20, 40, 100, 140, 0.9)])).annotate(rgb)
    assert shown.shape == rgb.shape and res2.timings.draw_ms > 0
    # a small photo is enlarged for legible tags; its boxes scale with it
    big = draw(rgb, res, min_side=480)
    assert big.shape == (480, 640, 3)
    assert big[240, 40][1] > 150 and big[240, 360][0] > 150


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
def test_pipeline_floor_on_the_dev_scenes():
    pairs = scenes_or_skip()
    rec = Recognizer.load(NET1, detector="blazeface-tiles")
    # a plain cut at the point of best F1 (web crops): the street point's unsure band would count as errors here
    m = evaluate_scenes(rec, pairs, threshold=rec.predictor.operating_points["crops"].threshold)
    summary = {k: m[k] for k in ("recall", "precision", "label_accuracy", "labelled",
                                 "label_accuracy_all", "accuracy_by_label", "ms")}
    assert m["recall"] >= 0.85, summary
    assert m["precision"] >= 0.85, summary
    assert m["labelled"] >= 200, summary
    assert m["label_accuracy"] >= LABEL_ACCURACY_FLOOR, summary
    assert set(m["accuracy_by_label"]) <= set(COVERED)


def test_evaluate_counts_a_mask_below_the_nose_as_covered(predictor, tmp_path):
    """Label accuracy uses the scene label mapped by COVERED; a fixed 'mask' answer is right for
    with_mask and mask_weared_incorrect faces and wrong for without_mask ones."""
    img = tmp_path / "s.png"
    Image.fromarray(noise()).save(img)
    xml = tmp_path / "s.xml"
    objs = "".join(f"<object><name>{lab}</name><bndbox><xmin>{x}</xmin><ymin>10</ymin><xmax>{x + 50}</xmax>"
                   f"<ymax>60</ymax></bndbox></object>"
                   for lab, x in (("with_mask", 0), ("mask_weared_incorrect", 100), ("without_mask", 200)))
    xml.write_text(f"<annotation>{objs}</annotation>")
    rec = Recognizer(predictor, FixedBoxes([(0, 10, 50, 60, 0.9), (100, 10, 150, 60, 0.8),
                                            (200, 10, 250, 60, 0.7)]))
    m = evaluate_scenes(rec, [(img, xml)], threshold=0.0)  # everything is called "mask"
    assert m["recall"] == 1.0 and m["precision"] == 1.0
    assert m["labelled"] == 3 and m["label_accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy_by_label"]["without_mask"] == (0.0, 1)


# ----------------------------------------------------------------------------------------- live

def test_live_buffer_fps_latency_and_staleness(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("maskrec.live.channel.time.monotonic", lambda: now[0])
    buf = LiveBuffer(window=5, stale_s=2.0)
    s = buf.snapshot()
    assert s.result is None and s.fps == 0.0 and s.mean is None and s.frames == 0
    res = FrameResult((), Timings(10.0, 2.0, 1.0), (480, 640))
    for _ in range(8):  # 8 frames 50 ms apart: 20 FPS over the last 5
        buf.put(res)
        now[0] += 0.05
    s = buf.snapshot()
    assert s.fps == pytest.approx(20.0) and s.frames == 8 and s.mean == Timings(10.0, 2.0, 1.0)
    buf.fail("boom")
    assert buf.snapshot().error == "boom"
    now[0] += 5  # the stream stopped: no frame for 5 s
    assert buf.snapshot().fps == 0.0


def test_frame_callback_annotates_frames_and_reports_through_the_buffer(predictor):
    av = pytest.importorskip("av")
    buf = LiveBuffer()
    rec = Recognizer(predictor, FixedBoxes([(20, 20, 90, 100, 0.9)]))
    cb = frame_callback(rec, buf, threshold=0.0, crop_side=48)
    frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="rgb24")
    # streamlit-webrtc calls it on its own worker thread
    out = []
    t = threading.Thread(target=lambda: out.append(cb(frame)))
    t.start()
    t.join()
    shown = out[0].to_ndarray(format="rgb24")
    assert shown.shape == (480, 640, 3)
    assert (shown != 90).any()
    s = buf.snapshot()
    assert s.frames == 1 and s.error == "" and s.result.faces[0].label == "mask"
    assert len(s.crops) == 1 and s.crops[0].shape == (48, 48, 3)

    class Broken(FixedBoxes):
        def detect(self, rgb):
            raise RuntimeError("no model")
    buf = LiveBuffer()  # a new stream: its first frame goes through the detector
    bad = frame_callback(Recognizer(predictor, Broken([])), buf)
    assert bad(frame) is frame  # the frame passes through; the error shows on the page
    assert buf.snapshot().error == "RuntimeError: no model"


@pytest.mark.parametrize("every", [1, 2, 3])
def test_the_live_stream_detects_one_frame_in_every_and_carries_the_people_between(predictor, every):
    """The detector runs on frames 0, every, 2*every...; the frames between show each confirmed person at
    the box the tracker predicts, with its voted label, and count them once, as a video run does."""
    av = pytest.importorskip("av")

    class Counting(FixedBoxes):
        calls = 0

        def detect(self, rgb):
            Counting.calls += 1
            return super().detect(rgb)

    buf = LiveBuffer(every=every)
    cb = frame_callback(Recognizer(predictor, Counting([(20, 20, 90, 100, 0.9)])), buf, threshold=0.0, crop_side=48)
    frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="rgb24")
    n = 24
    faces = []
    for _ in range(n):
        cb(frame)
        s = buf.snapshot()
        assert s.error == ""
        faces.append(len(s.result.faces))
    assert Counting.calls == -(-n // every)  # frames 0, every, 2 * every, ...
    hits = min_hits_for(every)
    # between detections a face shows only once it is a person (confirmed after `hits` detections)
    shown_between = [faces[i] for i in range(n) if i % every and i // every >= hits]
    assert shown_between == [1] * len(shown_between)
    assert all(faces[i] == 1 for i in range(0, n, every))
    assert buf.snapshot().detected == 1  # the detector's count, whichever frame came last
    assert buf.snapshot().people["people"] == 1 and buf.snapshot().frames == n
    s = buf.session()
    assert s.every == every and s.tracker.min_hits == hits


def test_a_live_buffer_refuses_a_detection_interval_under_one():
    with pytest.raises(ValueError, match="must be 1 or more"):
        LiveBuffer(every=0)


def _frame(kind: str, w: int, h: int):
    """A webcam frame of (w, h) in an odd colour format; the top eighth is magenta."""
    av = pytest.importorskip("av")
    rgb = np.full((h, w, 3), 90, np.uint8)
    rgb[: max(1, h // 8)] = (250, 0, 250)
    if kind == "rgb24":
        return av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if kind == "gray":
        return av.VideoFrame.from_ndarray(rgb[:, :, 0].copy(), format="gray")
    if kind in ("rgba", "bgra"):
        a = np.dstack([rgb if kind == "rgba" else rgb[:, :, ::-1], np.full((h, w), 255, np.uint8)])
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format=kind)
    # yuv420p, what aiortc hands over after decoding VP8; odd sizes round the chroma planes
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


ODD_FRAMES = [("rgb24", 1, 1), ("rgb24", 2, 2), ("rgb24", 641, 479), ("yuv420p", 641, 479),
              ("gray", 640, 480), ("rgba", 640, 480), ("bgra", 640, 480), ("rgb24", 4000, 3000)]


@pytest.mark.parametrize("kind,w,h", ODD_FRAMES, ids=[f"{k}-{w}x{h}" for k, w, h in ODD_FRAMES])
def test_frame_callback_survives_frames_of_odd_size_and_colour_format(predictor, kind, w, h):
    """No crash, the frame comes back at its own size, and a box that misses a tiny frame is no face."""
    buf = LiveBuffer()
    # a fixed box where a 640x480 camera's face would be: outside a 1x1 or 2x2 frame
    rec = Recognizer(predictor, FixedBoxes([(20, 20, 90, 100, 0.9)]))
    frame = _frame(kind, w, h)
    out = frame_callback(rec, buf, threshold=0.0, crop_side=48)(frame)
    shown = out.to_ndarray(format="rgb24")
    s = buf.snapshot()
    assert s.error == "" and s.frames == 1, s.error
    assert shown.shape == (h, w, 3) and s.result.shape == (h, w)
    assert len(s.result.faces) == (1 if min(w, h) > 20 else 0) == len(s.crops)
    if kind != "gray":  # the colour survived the conversion: magenta, not green (BGR/RGB mix-up)
        r, g, b = (int(v) for v in shown[0, -1])
        assert r > 200 and b > 200 and g < 60, (r, g, b)


def test_frame_callback_with_a_real_detector_on_odd_frames():
    rec = Recognizer.load(NET1, detector="blazeface-full")
    buf = LiveBuffer()
    cb = frame_callback(rec, buf)
    for kind, w, h in ODD_FRAMES:
        out = cb(_frame(kind, w, h))
        assert (out.width, out.height) == (w, h) and buf.snapshot().error == "", (kind, w, h, buf.snapshot().error)
    assert buf.snapshot().frames == len(ODD_FRAMES)


def test_a_frame_that_cannot_be_converted_passes_through_and_is_reported(predictor):
    class Exotic:  # a pixel format the converter does not know
        def to_ndarray(self, format):
            raise ValueError("unsupported pixel format 'weird'")
    buf = LiveBuffer()
    frame = Exotic()
    assert frame_callback(Recognizer(predictor, FixedBoxes([])), buf)(frame) is frame
    s = buf.snapshot()
    assert s.frames == 0 and "unsupported pixel format" in s.error


def test_ice_servers_from_the_environment(monkeypatch):
    monkeypatch.delenv("MASKREC_ICE_SERVERS", raising=False)
    assert ice_servers() == []
    turn = [{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]
    monkeypatch.setenv("MASKREC_ICE_SERVERS", json.dumps(turn))
    assert ice_servers() == turn
    for bad in ("turn:x", '{"urls": "x"}', '[{"user": "x"}]'):
        monkeypatch.setenv("MASKREC_ICE_SERVERS", bad)
        with pytest.raises(ValueError, match="MASKREC_ICE_SERVERS"):
            ice_servers()


def test_grad_cam_heatmap_covers_the_crop(predictor):
    crop = noise(70, 60, seed=3)
    heat, overlay = grad_cam(predictor, crop)
    assert heat.shape == (70, 60) and overlay.shape == (70, 60, 3) and overlay.dtype == np.uint8
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    # the model itself is unchanged: same probabilities before and after
    before = predictor.predict_proba([crop])
    grad_cam(predictor, crop, target=1)
    assert np.array_equal(before, predictor.predict_proba([crop]))
    assert all(p.grad is None for p in predictor.model.parameters())


def test_face_crops_are_the_classifier_inputs(predictor):
    rgb = noise()
    res = Recognizer(predictor, FixedBoxes([(10, 10, 60, 70, 0.9)]), margin=0.0).recognize(rgb)
    (crop,) = face_crops(rgb, res)
    assert np.array_equal(crop, rgb[10:70, 10:60])
    assert face_crops(rgb, res, side=32)[0].shape == (32, 32, 3)


# ------------------------------------------------------------------------------------------ CLI

def test_predict_json_reports_real_boxes(capsys):
    from maskrec.__main__ import main
    img, xml = scene()
    assert main(["predict", str(NET1), str(img), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["image"] == str(img) and len(row["faces"]) >= 8
    h, w = F.read_rgb(img).shape[:2]
    for f in row["faces"]:
        x0, y0, x1, y1 = f["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and (x1 - x0) < w / 2
        assert f["label"] in ("mask", "no_mask", "unsure") and 0 <= f["p_mask"] <= 1
    # most annotated faces >= 32 px have a reported box on them
    truths = [t for t in F.load_voc(xml) if min(t.x1 - t.x0, t.y1 - t.y0) >= 32]
    hit = sum(any(F.box_iou(f["box"], t) >= 0.4 for f in row["faces"]) for t in truths)
    assert hit >= 0.6 * len(truths)


def test_predict_json_no_face_and_whole_image_mode(capsys, tmp_path):
    from maskrec.__main__ import main
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 150), (240, 240, 240)).save(blank)
    assert main(["predict", str(NET1), str(blank), "--json"]) == 0
    pred = Predictor.load(NET1)
    point = {"name": pred.op.name, "threshold": round(pred.op.threshold, 4),
             "band": [round(v, 4) for v in pred.op.band] if pred.op.band else None}
    assert json.loads(capsys.readouterr().out) == {"image": str(blank), "faces": [], "operating_point": point}
    # "none": the whole image is one face (face crops like the training data), through the builder
    # predict --json and serve's /v1/detect share
    from maskrec.live.photo import PhotoReader
    (face,) = PhotoReader(pred).faces(Image.open(blank).convert("RGB"), "none")
    assert face["box"] == [0, 0, 200, 150] and face["label"] in ("mask", "no_mask")


# ----------------------------------------------------------------------------------------- page

@pytest.fixture
def page(monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("MASKREC_ICE_SERVERS", raising=False)
    # The page file on its own: AppTest loses widget events on pages reached through st.navigation.
    at = AppTest.from_file(str(REPO / "pages" / "4_Recognize.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def captions(at) -> list[str]:
    return [im.caption for el in at.image for im in el.proto.imgs]


def test_page_controls_default_to_the_checkpoint(page):
    assert page.title[0].value == "Recognize"
    assert page.selectbox(key="recognize_det_photo").value == F.PHOTO_DEFAULT
    assert page.selectbox(key="recognize_det_live").value == F.LIVE_DEFAULT
    from maskrec.config import DEFAULT_CHECKPOINT
    assert page.selectbox(key="recognize_ckpt").value == f"shipped: {DEFAULT_CHECKPOINT.stem}"  # the default recogniser
    pred = Predictor.load(DEFAULT_CHECKPOINT)
    assert page.selectbox(key=f"recognize_op::{DEFAULT_CHECKPOINT}").value == pred.default_op  # street
    assert any(f"operating point **{pred.default_op}**" in c.value for c in page.caption)
    page.selectbox(key=f"recognize_op::{DEFAULT_CHECKPOINT}").set_value("custom threshold").run()
    thr = [s for s in page.slider if s.label == "P(mask) threshold"][0]
    assert thr.value == pytest.approx(pred.threshold)
    assert "FPS" in [m.label for m in page.metric]
    assert any("MASKREC_ICE_SERVERS" in c.value for c in page.caption)
    assert any("Not streaming" in c.value for c in page.caption)


@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_page_upload_boxes_faces_and_skips_a_bad_file(page):
    img, _ = scene()
    page.file_uploader(key="recognize_uploads").set_value(
        [("street.jpg", img.read_bytes(), "image/jpeg"), ("broken.jpg", b"not a photo", "image/jpeg"),
         ("plain.png", jpeg(np.full((120, 160, 3), 200, np.uint8)), "image/png")])
    page.run()
    assert not page.exception, page.exception
    assert any("broken.jpg" in w.value and "skipped" in w.value for w in page.warning)
    caps = captions(page)
    assert any(c.startswith("street.jpg:") and "face(s)" in c and "detect" in c for c in caps), caps
    n_faces = int(next(c for c in caps if c.startswith("street.jpg:")).split(": ")[1].split(" ")[0])
    per_face = [c.split(" · ", 1)[1] for c in caps if re.match(r"\d+ · (mask|no mask|unsure) ", c)]  # "3 · mask 0.97"
    assert n_faces >= 8 and len(per_face) == n_faces
    assert any("No face found" in i.value for i in page.info)  # plain.png carried on after broken.jpg

    # threshold 0: every face is called mask; Grad-CAM adds a second row of crops
    from maskrec.config import DEFAULT_CHECKPOINT
    page.selectbox(key=f"recognize_op::{DEFAULT_CHECKPOINT}").set_value("custom threshold").run()
    [s for s in page.slider if s.label == "P(mask) threshold"][0].set_value(0.0)
    page.toggle(key="recognize_cam").set_value(True)
    page.run()
    assert not page.exception, page.exception
    per_face = [c.split(" · ", 1)[1] for c in captions(page) if re.match(r"\d+ · (mask|no mask) ", c)]
    assert len(per_face) == 2 * n_faces and all(c.startswith("mask ") for c in per_face)


def test_page_camera_snapshot(page):
    img, _ = scene()
    page.camera_input(key="recognize_snapshot").set_value(("shot.jpg", img.read_bytes(), "image/jpeg"))
    page.run()
    assert not page.exception, page.exception
    caps = captions(page)
    assert any(c.startswith("snapshot:") and "face(s)" in c for c in caps), caps


def test_page_upload_of_a_photo_turned_by_exif_is_read_upright(page):
    # A phone stores a portrait photo lying on its side and says in EXIF how to turn it. The scene
    # stored turned a quarter (np.rot90) with EXIF 6 (turn 90 degrees clockwise) must reach the
    # detector upright: read as stored, the photo detector finds 6 faces in it, upright 38 (measured).
    img, _ = scene()
    rgb = np.asarray(Image.open(img).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(np.rot90(rgb).copy()).save(buf, "JPEG", quality=95, exif=exif)
    page.file_uploader(key="recognize_uploads").set_value(
        [("upright.jpg", jpeg(rgb), "image/jpeg"), ("turned.jpg", buf.getvalue(), "image/jpeg")])
    page.run()
    assert not page.exception, page.exception
    n = {c.split(":")[0]: int(c.split(": ")[1].split(" ")[0]) for c in captions(page) if "face(s)" in c}
    assert n["turned.jpg"] >= 20 and abs(n["turned.jpg"] - n["upright.jpg"]) <= 2, n  # JPEG noise aside


def test_the_live_face_count_is_the_detectors_not_the_carried_frames(predictor):
    """The page's Faces figure is the count of the latest detection frame; frames between detections
    draw the same faces (the people, and the faces not yet confirmed as one, at their boxes), so
    neither the figure nor the boxes blink on every other frame."""
    av = pytest.importorskip("av")
    buf = LiveBuffer(every=2)
    boxes = [(20, 20, 90, 100, 0.9), (200, 40, 270, 120, 0.9), (400, 60, 470, 140, 0.9)]
    cb = frame_callback(Recognizer(predictor, FixedBoxes(boxes)), buf, threshold=0.0, crop_side=48)
    frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="rgb24")
    cb(frame)  # a detection frame: three faces, no one confirmed yet
    assert len(buf.snapshot().result.faces) == 3 and buf.snapshot().detected == 3
    cb(frame)  # carried: nobody confirmed yet, the three faces drawn all the same, with no id
    s = buf.snapshot()
    assert [f.box[:4] for f in s.result.faces] == [b[:4] for b in boxes] and s.detected == 3
    assert LiveBuffer().snapshot().detected == 0
    plain = LiveBuffer()  # untracked (every frame detected): the frame's own count
    frame_callback(Recognizer(predictor, FixedBoxes(boxes[:2])), plain, threshold=0.0, track=False)(frame)
    assert plain.snapshot().detected == 2


def test_page_shows_an_uploads_name_as_typed_not_as_markdown(page):
    """An upload's name went into the caption and the "skipped" warning raw: "**x**" came out bold,
    "[a](b)" a link. It is escaped, so it shows as typed."""
    from maskrec.core.presentation import md_text
    bad, good = "**bold** [a](http://x).jpg", "_under_ #1 ~x~.png"
    page.file_uploader(key="recognize_uploads").set_value(
        [(bad, b"not a photo", "image/jpeg"), (good, jpeg(np.full((120, 160, 3), 200, np.uint8)), "image/png")])
    page.run()
    assert not page.exception, page.exception
    assert [w.value for w in page.warning if "skipped" in w.value] == [f"**{md_text(bad)}** skipped: not an image "
                                                                      "Pillow can read."]
    assert any(c.startswith(f"{md_text(good)}: 0 face(s)") for c in captions(page)), captions(page)
    assert md_text(bad) == r"\*\*bold\*\* \[a\](http\://x).jpg" and md_text(good) == r"\_under\_ #1 \~x\~.png"
