"""Issue 37, items 7-9 on the Recognize side: the live count of people (re-identification of a face
lost for a moment), box labels that stay legible and apart, labels the page cuts off, and the
`video` / review wording."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from maskrec import faces as F
from maskrec.infer.predictor import Predictor
from maskrec.live.channel import LiveBuffer
from maskrec.live.recognize import Recognizer, face_crops
from maskrec.data.synth import render
from tests.conftest import REPO, SCENES

NET1 = REPO / "checkpoints" / "net1.pt"
W, H, FPS = 640, 480, 30


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(NET1)


class Scripted:
    """A detector that 'finds' the boxes the test put in the frame it is given next."""
    name = "scripted"

    def __init__(self):
        self.boxes: list = []

    def detect(self, rgb):
        return [F.Box(*b) for b in self.boxes]


def frame_with(faces: list[tuple]) -> tuple[np.ndarray, list]:
    """A grey 640x480 frame with each (face RGB, x, y, side[, inner]) pasted ``side`` px wide, and
    the boxes a detector gives them: the whole picture, or ``inner`` (x0, y0, x1, y1 as shares of it)."""
    rgb = np.full((H, W, 3), 90, np.uint8)
    boxes = []
    for face, x, y, side, *inner in faces:
        h = round(side * face.shape[0] / face.shape[1])
        rgb[y:y + h, x:x + side] = np.asarray(Image.fromarray(face).resize((side, h), Image.BILINEAR))
        u0, v0, u1, v1 = inner[0] if inner else (0, 0, 1, 1)
        boxes.append((x + round(u0 * side), y + round(v0 * h), x + round(u1 * side), y + round(v1 * h), 0.95))
    return rgb, boxes


def stream(predictor, script) -> LiveBuffer:
    """Feed the live buffer as the frame callback does on detection frames (every frame here): one
    frame per entry of ``script`` (a list of faces, as ``frame_with`` takes them), at 30 fps."""
    det = Scripted()
    rec = Recognizer(predictor, det)
    buf = LiveBuffer(every=1)
    for i, faces in enumerate(script):
        rgb, det.boxes = frame_with(faces)
        res = rec.recognize(rgb)
        buf.track(res, rec.threshold, predictor.classes, now=1000.0 + i / FPS, detector=det.name,
                  crops=face_crops(rgb, res, 96))
    return buf


def synth_face(i: int) -> np.ndarray:
    return np.asarray(render(i)[0].convert("RGB"))


@pytest.mark.parametrize("away", [5, 60], ids=["a few frames", "two seconds"])
def test_a_face_lost_for_a_moment_and_back_elsewhere_is_one_person(predictor, away):
    """A face seen for 10 frames, gone (turned away, behind someone), back at the other side of
    the picture: too far for the boxes to match, so the tracker starts a new track; its look
    gives the person their id back, and the count stays 1."""
    a = synth_face(0)
    script = [[(a, 60, 80, 90)]] * 10 + [[]] * away + [[(a, 420, 250, 100)]] * 15
    buf = stream(predictor, script)
    rows = buf.session().tracker.tracks()
    assert buf.snapshot().people["people"] == 1
    assert [(r.track, r.frames) for r in rows] == [(1, 25)]   # one person, seen on every frame of both visits


def test_a_different_face_where_one_was_lost_is_a_second_person(predictor):
    a, b = synth_face(0), synth_face(2)
    script = [[(a, 60, 80, 90)]] * 10 + [[]] * 5 + [[(b, 420, 250, 100)]] * 15
    buf = stream(predictor, script)
    rows = buf.session().tracker.tracks()
    assert buf.snapshot().people["people"] == 2 and [r.track for r in rows] == [1, 2]
    assert rows[0].label == rows[1].label  # both bare: their looks, not their votes, keep them apart


def test_real_faces_of_one_photo_back_elsewhere_counted_once_and_others_counted_again(predictor):
    """The same with the bare faces of one dev photo (same light and camera, one label, so only the
    looks can tell them apart): the hard case for a colour look. Each face, pasted with its
    surroundings, returns at another place and size; or another face comes where it was lost.
    Colour is a weak cue between people in one light: evaluation.reid merges 8-10% of strangers
    with someone of their photo; here 2 of the 10 pairs (the 5 largest bare faces) merge."""
    if not (SCENES / "annotations").is_dir():
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    img, xml = dict((i.stem, (i, x)) for i, x in F.scenes(SCENES))["maksssksksss110"]
    rgb = F.read_rgb(img)
    bare = sorted((t for t in F.load_voc(xml) if not F.COVERED[t.label]), key=lambda t: -(t.x1 - t.x0))[:5]
    faces = []
    for t in bare:  # the face with its surroundings (what the crop's margin takes in), and the face's box in it
        x0, y0, x1, y1 = F.crop_box(t[:4], rgb.shape, 0.5)
        w, h = x1 - x0, y1 - y0
        faces.append((rgb[y0:y1, x0:x1], ((t.x0 - x0) / w, (t.y0 - y0) / h, (t.x1 - x0) / w, (t.y1 - y0) / h)))

    def people(a, b) -> int:
        script = [[(a[0], 60, 80, 140, a[1])]] * 10 + [[]] * 8 + [[(b[0], 380, 200, 180, b[1])]] * 15
        return stream(predictor, script).snapshot().people["people"]

    assert [people(a, a) for a in faces] == [1] * len(faces)
    apart = [people(a, b) for i, a in enumerate(faces) for b in faces[i + 1:]]
    assert apart.count(2) >= len(apart) - 2, apart


def test_two_look_alike_faces_seen_together_are_never_merged(predictor):
    """Re-identification only takes someone last seen before the new face started: the same face
    twice in one frame (twins, a poster) is two people."""
    a = synth_face(0)
    buf = stream(predictor, [[(a, 60, 80, 90), (a, 420, 250, 90)]] * 15)
    assert buf.snapshot().people["people"] == 2


# ----------------------------------------------------------------------------------- CLI (item 9)

@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    pytest.importorskip("av")
    from tests.test_video import cartoon_clip
    return cartoon_clip(tmp_path_factory.mktemp("clip"))[0]


def test_video_on_a_still_picture_points_to_predict(tmp_path, capsys):
    from maskrec.__main__ import main
    pytest.importorskip("av")
    pic = tmp_path / "door.mp4"  # a JPEG under a video's name
    Image.new("RGB", (64, 48), (200, 10, 10)).save(pic, format="JPEG")
    assert main(["video", str(pic), "--out", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert "is a picture (jpeg), not a video" in err and f"python -m maskrec predict {pic}" in err
    assert "tab" not in err and "Traceback" not in err


def test_the_video_tab_points_a_still_picture_to_its_upload_photos_tab(tmp_path):
    """The same file dropped on the Video tab (renamed .mp4): the tab's own word, not the CLI's."""
    from types import SimpleNamespace
    from maskrec import video as V
    pytest.importorskip("av")
    folder = tmp_path / "job"
    folder.mkdir()
    pic = folder / "input.mp4"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(pic, format="JPEG")
    rec = SimpleNamespace(threshold=0.5, predictor=SimpleNamespace(classes=("no_mask", "mask")))
    job = V.VideoJob(pic, folder, rec, name="door.mp4").start()
    job.join(60)
    assert job.status == "failed"
    assert job.error == "door.mp4 is a picture (jpeg), not a video: drop it on the Upload photos tab"


@pytest.mark.slow  # 10 s: out of the quick subset, which stays under 90 s (issue 36)
def test_video_writes_only_the_report_when_only_report_is_asked_and_refuses_neither(clip, tmp_path, capsys):
    from maskrec import video as V
    from maskrec.__main__ import main
    rep = tmp_path / "door.html"
    assert main(["video", str(clip), "--report", str(rep)]) == 0
    cap = capsys.readouterr()
    assert rep.is_file() and "people:" in cap.out and "wrote " not in cap.out  # no video written, none said
    assert not list(tmp_path.glob(f"*{V.output_suffix()}"))
    assert main(["video", str(clip)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--out" in err and "--report" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ box tags (item 8)

def _overlaps(rects) -> list[tuple[int, int]]:
    return [(i, j) for i, a in enumerate(rects) for j, b in enumerate(rects[i + 1:], i + 1)
            if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])]


def test_tags_of_a_crowd_keep_clear_of_each_other_and_shorten_to_the_number_where_there_is_no_room():
    from maskrec.faces import tags as T
    # two rows of 8 faces 50 px wide, 6 px apart: "3 mask 0.97" is wider than a face and its gap
    boxes = [(20 + 56 * i, y, 70 + 56 * i, y + 60) for y in (100, 166) for i in range(8)]
    texts = [f"{i} mask 0.97" for i in range(1, 17)]
    _, rects, _ = T.layout(texts, boxes, (480, 640), 16)
    assert _overlaps(rects)  # the full tags cannot all keep clear here...
    drawn, rects, _ = T.layout(texts, boxes, (480, 640), 16, short=[str(i) for i in range(1, 17)])
    assert not _overlaps(rects)  # ...the numbers can, and the faces with room keep their whole tag
    assert all(d in (t, t.split()[0]) for d, t in zip(drawn, texts)) and any(d == t for d, t in zip(drawn, texts))
    assert all(0 <= x0 and 0 <= y0 and x1 <= 640 and y1 <= 480 for x0, y0, x1, y1 in rects)
    # a face at the top edge gets its tag below or inside, within the frame
    _, (r,), _ = T.layout(["1 mask 0.97"], [(10, 0, 60, 50)], (480, 640), 16)
    assert r[1] >= 0


def test_tags_on_a_crowd_photo_of_the_dev_scenes_do_not_overlap():
    from maskrec.faces import tags as T
    if not (SCENES / "annotations").is_dir():
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    _, xml = dict((i.stem, (i, x)) for i, x in F.scenes(SCENES))["maksssksksss110"]
    k = 720 / 267  # the page enlarges the 400x267 photo to SHOW_SIDE (720 px) before drawing
    boxes = [tuple(v * k for v in t[:4]) for t in F.load_voc(xml)]
    _, rects, _ = T.layout([str(i) for i in range(1, len(boxes) + 1)], boxes, (720, 1078), 1078 / 48)
    assert not _overlaps(rects), _overlaps(rects)


def _text_rows(img: np.ndarray) -> int:
    """Height of the white tag text drawn on a black frame (a green box and tag: R and B stay low)."""
    rows = np.where(((img[..., 0] > 120) & (img[..., 2] > 120)).any(axis=1))[0]
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


@pytest.mark.parametrize("w,h,min_side", [(400, 267, 720), (640, 480, 0), (1200, 801, 720)])
def test_tags_are_a_fixed_share_of_the_photos_width_so_they_read_the_same_however_it_is_shown(w, h, min_side):
    """A 400 px photo is enlarged to 720 px tall, then shown shrunk to a column: its tags were
    ~1/80 of its width (6 px on screen beside the faces); now 1/48, as on a large photo."""
    from maskrec.live.recognize import Face, FrameResult, Timings, draw
    box = F.Box(w // 4, h // 3, w // 4 + w // 8, h // 3 + w // 8, 0.9)
    res = FrameResult((Face(box, tuple(box[:4]), "mask", 0.97),), Timings(0, 0), (h, w))
    out = draw(np.zeros((h, w, 3), np.uint8), res, min_side=min_side, tags=["1"])
    assert _text_rows(out) >= out.shape[1] / 55, (_text_rows(out), out.shape)


@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
def test_the_engine_details_sit_behind_an_expander_above_the_tabs():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(REPO / "pages" / "4_Recognize.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    (exp,) = [e for e in at.expander if e.label.startswith("Detectors and engine")]
    inside = [c.value for c in exp.caption]
    assert any("engine" in c and "ms a face" in c for c in inside)
    outside = [c.value for c in at.caption if c.value not in inside]
    assert not any("engine" in c or "int8" in c or "calibrat" in c for c in outside), outside
    assert any("Green box: mask" in c for c in outside)


# ------------------------------------------------------------------- review cards' words (item 9)

def _trained_on(src, data: str, out):
    """A copy of a checkpoint that says it trained on ``data``."""
    import torch
    ckpt = torch.load(src, weights_only=True)
    ckpt["config"] = {**ckpt["config"], "data": data}
    torch.save(ckpt, out)
    return out


def test_a_checkpoints_own_training_images_are_said_seen_in_training_not_out_of_sample(demo_dir, tmp_path):
    from maskrec.train import suspects
    from maskrec.data import discover
    ds = discover(demo_dir, overrides=False)
    own = _trained_on(NET1, str(demo_dir), tmp_path / "own.pt")
    train = {str(it.path) for it in ds.items if it.split == "train"}
    assert suspects.seen_in_training(own, ds) == train and train
    # trained elsewhere (net1.pt: the dev data): nothing of this folder was seen
    assert suspects.seen_in_training(NET1, ds) == set()
    # the same folder named from another machine (another path, the same folder name) counts too
    moved = _trained_on(NET1, f"/elsewhere/{demo_dir.name}", tmp_path / "moved.pt")
    assert suspects.seen_in_training(moved, ds) == train
    found = suspects.find(ds, checkpoint=own)
    assert found, "the demo set has images net1 gets wrong"
    for s in found:
        model = s.reason.split(";")[0]
        assert "out-of-sample" not in model and "checkpoint's P(mask)" in model
        assert model.endswith("(seen in training)" if s.file in train else "(not seen in training)"), s
    assert any(s.file in train for s in found) and any(s.file not in train for s in found)
    # the quick k-fold model stays out of sample
    quick = suspects.rank(["a.jpg", "b.jpg", "c.jpg"], np.array([1, 0, 1]), np.array([0.01, 0.02, 0.98]))
    assert [s.file for s in quick] == ["a.jpg"] and "out-of-sample" in quick[0].reason
    assert "training" not in quick[0].reason


# ------------------------------------------------------- labels cut off, in Chromium (item 8)

# what the page cuts off: any visible element under ``where`` drawn with an ellipsis for want of room
CUT_OFF = """(where) => [...document.querySelectorAll(where + ' *')].filter(e =>
    e.offsetParent !== null && getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1
    ).map(e => e.innerText.trim()).filter(t => t)"""
MAIN = '[data-testid="stMain"]'
REVIEW = ".st-key-review_section"  # ui/review.py's section: the rest of the Dataset page is not this file's


def _open(browser, url: str, ready: str, width: int):
    from tests.test_browser import idle
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url)
    page.get_by_text(ready).first.wait_for(timeout=180_000)
    idle(page)
    return page


WIDTHS = [1024, 1400]  # a small laptop's window (where "Flip la…" was seen) and the tests' usual one


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_no_label_of_the_live_panel_is_cut_off_while_it_streams(webcam, width):
    import re
    from tests.test_webcam_browser import shots_dir, wait_until
    server, browser = webcam
    page = _open(browser, server.url + "/Recognize", "Upload photos", width)
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Not streaming").first.wait_for()
    frame = page.frame_locator('iframe[title*="webrtc_streamer"]')
    frame.get_by_role("button", name=re.compile("^start$", re.I)).click()
    # the people's metrics are drawn once frames come back (ten metrics in all), whatever they are called
    wait_until(page, "() => document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 10", 180)
    page.screenshot(path=str(shots_dir() / f"recognize-live-labels-{width}.png"))
    assert page.evaluate(CUT_OFF, MAIN) == []
    assert page.get_by_text(re.compile(r"not a head count")).count() == 1  # what People counts, said
    frame.get_by_role("button", name=re.compile("^stop$", re.I)).click()
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_no_button_of_a_review_card_is_cut_off(webcam, width):
    from tests.test_browser import idle, shots_dir
    server, browser = webcam
    page = _open(browser, server.url + "/Dataset", "Review labels", width)
    page.get_by_role("combobox", name="Model").click()
    page.keyboard.type("shipped: net1")  # a checkpoint: no k-fold training to wait for
    page.keyboard.press("Enter")
    page.get_by_text("Folds").first.wait_for()
    idle(page)
    page.get_by_role("button", name="Find suspects").click()
    page.get_by_role("button", name="Flip label").first.wait_for(timeout=300_000)
    idle(page)
    page.get_by_role("heading", name="Review labels").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(shots_dir() / f"review-cards-{width}.png"))
    assert page.evaluate(CUT_OFF, REVIEW) == []
    # nothing runs over its card: each card's pictures stay within it
    over = page.evaluate("""() => [...document.querySelectorAll('[class*="st-key-rv_card_"]')].filter(c => {
        const r = c.getBoundingClientRect();
        return [...c.querySelectorAll('img')].some(i => i.getBoundingClientRect().right > r.right + 1); }).length""")
    assert over == 0
    assert page.get_by_text("not trained on this folder").count() >= 1  # net1.pt never saw the demo data
    page.close()


@pytest.fixture(scope="module")
def webcam(tmp_path_factory):
    """test_webcam_browser's server and Chromium with its fake camera playing the dev scenes."""
    import os
    from tests.test_browser import CHROMIUM, Server
    from tests.test_webcam_browser import ARGS, CLIP_SCENES, FPS_IN, scene_paths, write_y4m
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (CI installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    paths = [scene_paths(n)[0] for n in CLIP_SCENES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    from evaluation.detection import letterbox
    clip = write_y4m(tmp_path_factory.mktemp("clip") / "scenes.y4m",
                     [letterbox(F.read_rgb(p)) for p in paths for _ in range(FPS_IN)])
    server = Server(tmp_path_factory.mktemp("home")).start()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={clip}"])
            yield server, browser
            browser.close()
    finally:
        server.kill()
