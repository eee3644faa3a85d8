"""Issue 37, items 7-9 on the Recognize side: the live count of people (re-identification of a face
lost for a moment), box labels that stay legible and apart, labels the page cuts off, and the
`video` / review wording."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from maskrec import faces as F
from maskrec.inference import Predictor
from maskrec.recognize import LiveBuffer, Recognizer, face_crops
from maskrec.synth import render
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
    evaluation.reid measures 2-3% of such pairs alike enough to merge; here 1 of the 10 pairs is."""
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
    assert apart.count(2) >= len(apart) - 1, apart


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
