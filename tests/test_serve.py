"""``python -m maskrec serve`` (maskrec/serve): the HTTP API for other programs.

End to end through a real uvicorn server (``python -m maskrec serve`` in a subprocess on a free
port, waited on by polling /readyz): the same JSON as ``predict --json``, classify, health,
metrics, the API key, bad input. The in-process FastAPI TestClient, on a model loaded once, where
that is enough: the full queue's 503 (a worker held on an Event, no sleeps), upload limits, keys.
The core runs on a scene made here from the demo generator's faces; a dev scene joins where
../shared is present.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from maskrec.data import synth
from maskrec.__main__ import main
from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.core.process import end_process
from maskrec.serve import KEY_ENV, MAX_UPLOAD_MB, ModelHolder, Settings, WorkPool, check_exposure, create_app, is_loopback
from maskrec.serve.work import Busy
from tests.conftest import REPO
from tests.test_faces import _jpeg_claiming, _png_claiming
from tests.test_recognize import SCENE, scene

KEY = "test-key-0123456789abcdef"
ENGINE = ["--engine", "torch"]  # one engine for server and CLI: the same P(mask) to the last digit


def scene_image(path: Path) -> Path:
    """Three of the demo generator's faces on a grey street: the photo detector finds each."""
    canvas = Image.new("RGB", (640, 480), (200, 200, 200))
    for index, x in ((0, 40), (3, 240), (5, 440)):
        face, _ = synth.render(index, seed=0)
        canvas.paste(face.resize((160, 160)), (x, 150))
    canvas.save(path, quality=92)
    return path


def png_bytes(size=(64, 64), color="teal") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def counter(text: str, name: str, **labels) -> float:
    """One sample of the Prometheus text (0 when that series does not exist yet)."""
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    return scene_image(tmp_path_factory.mktemp("serve") / "scene.jpg")


# ------------------------------------------------------------------------ a real server, end to end

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m maskrec serve`` on 127.0.0.1 with its key from $MASKREC_API_KEY, the default
    checkpoint and detector; yields its base URL once /readyz says 200."""
    home = tmp_path_factory.mktemp("serve-home")
    log = home / "server.log"
    port = free_port()
    env = dict(os.environ, MASKREC_HOME=str(home), **{KEY_ENV: KEY})
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "maskrec", "serve", "--port", str(port), *ENGINE],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            assert proc.poll() is None, f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after 240 s:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:  # not listening yet
                pass
            time.sleep(0.1)  # polling interval: readiness itself is what /readyz said
        yield url
    finally:
        end_process(proc)


AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["generated", "dev-scene"])
def test_detect_gives_the_same_json_as_predict(server, photo, capsys, which):
    path = photo if which == "generated" else scene(SCENE)[0]  # the dev scene skips without ../shared
    assert main(["predict", str(DEFAULT_CHECKPOINT), str(path), "--json", *ENGINE]) == 0
    expected = json.loads(capsys.readouterr().out)
    if which == "generated":
        assert len(expected["faces"]) == 3  # the scene is worth comparing: every face found
    r = httpx.post(f"{server}/v1/detect", files={"file": (str(path), path.read_bytes())}, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json() == expected
    # the raw body works as well: the same faces, no file name
    r = httpx.post(f"{server}/v1/detect", content=path.read_bytes(), headers=AUTH, timeout=120)
    assert r.json() == expected | {"image": None}


@pytest.mark.slow
def test_detect_options_classify_health_and_metrics(server, photo):
    before = httpx.get(f"{server}/metrics", headers=AUTH).text
    # another operating point and the whole image as one face, as predict --operating-point / --detector none
    r = httpx.post(f"{server}/v1/detect", params={"detector": "none", "operating_point": "crops"},
                   content=photo.read_bytes(), headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert face["box"] == [0, 0, 640, 480] and r.json()["operating_point"]["name"] == "crops"
    crops = [("files", (f"face{i}.png", png_bytes((48 + i, 56), c))) for i, c in enumerate(["teal", "wheat", "navy"])]
    r = httpx.post(f"{server}/v1/classify", files=crops, headers=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    got = r.json()
    assert [c["image"] for c in got["crops"]] == ["face0.png", "face1.png", "face2.png"]
    assert all(c["label"] in ("mask", "no_mask", "unsure") and 0 <= c["p_mask"] <= 1 for c in got["crops"])
    assert got["operating_point"]["name"] == "street" and got["engine"]["engine"] == "torch"
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["ready"] is True and ready["checkpoint"] == DEFAULT_CHECKPOINT.name
    after = httpx.get(f"{server}/metrics", headers=AUTH)
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    for route in ("/v1/detect", "/v1/classify"):
        assert (counter(text, "maskrec_http_requests_total", route=route, method="POST", status="200")
                == counter(before, "maskrec_http_requests_total", route=route, method="POST", status="200") + 1)
        assert counter(text, "maskrec_http_request_duration_seconds_count", route=route) >= 1
        assert counter(text, "maskrec_inference_duration_seconds_count", route=route) >= 1
    faces = sum(counter(text, "maskrec_faces_total", label=lab) - counter(before, "maskrec_faces_total", label=lab)
                for lab in ("mask", "no_mask", "unsure"))
    assert faces == 4  # one whole image, three crops
    for gauge in ("maskrec_queue_depth", "maskrec_workers_busy"):
        assert counter(text, gauge) == 0
    assert counter(text, "maskrec_model_ready") == 1


@pytest.mark.slow
def test_bad_input_gets_one_clear_answer_and_the_server_goes_on(server, photo, tmp_path):
    def detect(body, **kw):
        return httpx.post(f"{server}/v1/detect", content=body, timeout=60, **kw)
    for key in (None, "wrong-key", KEY[:-1]):
        r = detect(photo.read_bytes(), headers={"Authorization": f"Bearer {key}"} if key else {})
        assert r.status_code == 401 and "API key" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/metrics").status_code == 401
    r = detect(b"%PDF-1.4 not an image", headers=AUTH)
    assert r.status_code == 400 and r.json() == {"error": "not an image Pillow can read", "image": None}
    # a 200 MP PNG (20000 x 10000) and a 200 MP progressive JPEG (16320 x 12240): refused from the
    # header (the files are a few hundred bytes; decoding them would take 600 MB)
    progressive = _progressive_claiming(tmp_path, 16320, 12240)
    for body in (_png_claiming(20000, 10000), progressive.read_bytes()):
        r = detect(body, headers=AUTH)
        assert r.status_code == 400 and r.json()["error"].startswith("too many pixels"), r.text
        assert "decompression bomb" in r.json()["error"]
    r = httpx.post(f"{server}/v1/classify", content=png_bytes(), headers=AUTH)
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]
    assert detect(photo.read_bytes(), headers=AUTH).status_code == 200
    assert httpx.get(f"{server}/healthz").status_code == 200


def _progressive_claiming(tmp_path: Path, w: int, h: int) -> Path:
    """A small progressive JPEG whose frame header (SOF2) claims w x h."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buf, "JPEG", quality=90, progressive=True)
    b = bytearray(buf.getvalue())
    sof = b.index(b"\xff\xc2")
    b[sof + 5:sof + 9] = h.to_bytes(2, "big") + w.to_bytes(2, "big")
    path = tmp_path / f"progressive-{w}x{h}.jpg"
    path.write_bytes(bytes(b))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_refuses_to_listen_beyond_loopback_without_a_key(host):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    # a timeout rather than a hang if it did start
    r = subprocess.run([sys.executable, "-m", "maskrec", "serve", "--host", host, "--port", str(free_port())],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.startswith(f"error: --host {host} listens beyond this machine, so an API key is required")
    assert KEY_ENV in r.stderr and "Traceback" not in r.stderr


def test_the_exposure_rule():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
        check_exposure(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.org"):
        assert not is_loopback(host), host
        with pytest.raises(ValueError, match="API key is required"):
            check_exposure(host, None)
        check_exposure(host, KEY)
    with pytest.raises(ValueError, match="empty"):
        Settings(api_key=" ")


def test_the_upload_limit_is_the_apps():
    import tomllib

    from ui.common import MAX_UPLOAD_MB as page_limit
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert MAX_UPLOAD_MB == page_limit == config["server"]["maxUploadSize"]


# ------------------------------------------------------------------ in process: FastAPI's TestClient

@pytest.fixture(scope="module")
def holder() -> ModelHolder:
    """The default checkpoint and detector, loaded once for the in-process apps."""
    h = ModelHolder(Settings(engine="torch"))
    h.load()
    assert h.ready, h.failed
    return h


def client(holder, **settings):
    from fastapi.testclient import TestClient
    return TestClient(create_app(Settings(engine="torch", **settings), holder))


def test_a_full_queue_answers_503_with_retry_after_at_once(holder, photo):
    """1 worker + 1 queue slot, both taken (the worker held on an Event): the next request is
    refused at once, not queued; once the worker is let go, requests are served again."""
    with client(holder, workers=1, queue=1) as c:
        pool: WorkPool = c.app.state.pool
        gate, started = threading.Event(), threading.Event()
        running = pool.reserve().submit(lambda: (started.set(), gate.wait(60)))
        queued = pool.reserve().submit(lambda: "queued")
        try:
            assert started.wait(60)
            assert (pool.held, pool.running, pool.waiting) == (2, 1, 1)
            r = c.post("/v1/detect", content=photo.read_bytes())
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"].startswith("busy: every worker and queue slot is taken")
            assert pool.held == 2  # the refused request took no slot
            text = c.get("/metrics").text
            assert counter(text, "maskrec_rejected_requests_total", reason="queue_full") == 1
            assert counter(text, "maskrec_queue_depth") == 1 and counter(text, "maskrec_workers_busy") == 1
        finally:
            gate.set()
        assert running.result(60) and queued.result(60) == "queued"
        r = c.post("/v1/detect", content=photo.read_bytes())
        assert r.status_code == 200 and len(r.json()["faces"]) == 3


def test_the_work_pool_frees_a_slot_whose_job_was_cancelled_or_never_submitted():
    pool = WorkPool(workers=1, queue=1)
    gate = threading.Event()
    try:
        first = pool.reserve().submit(gate.wait, 60)
        second = pool.reserve().submit(lambda: None)
        with pytest.raises(Busy):
            pool.reserve()
        assert second.cancel()  # still queued behind the held worker
        with pool.reserve():  # its slot came back; this one is left unused
            assert pool.held == 2
        assert pool.held == 1
    finally:
        gate.set()
    assert first.result(60) is True
    pool.shutdown()


def test_an_api_key_is_asked_on_every_route_but_health(holder, photo):
    with client(holder, api_key=KEY) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY}"},
                        {"Authorization": f"Bearer {KEY}x"}):
            assert c.post("/v1/detect", content=photo.read_bytes(), headers=headers).status_code == 401
            assert c.post("/v1/classify", files={"files": ("a.png", png_bytes())}, headers=headers).status_code == 401
            assert c.get("/metrics", headers=headers).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.post("/v1/detect", content=photo.read_bytes(), headers=AUTH).status_code == 200
        assert counter(c.get("/metrics", headers=AUTH).text, "maskrec_rejected_requests_total",
                       reason="unauthorized") == 12
    with client(holder) as c:  # no key given (loopback): none asked
        assert c.post("/v1/classify", files={"files": ("a.png", png_bytes())}).status_code == 200


def test_uploads_over_the_limit_get_413_whether_declared_or_not(holder):
    limit = 4096
    with client(holder, max_upload_mb=limit / (1 << 20)) as c:
        big = os.urandom(limit + 1)

        def chunked():  # no Content-Length: counted as it arrives
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]
        answers = [c.post("/v1/detect", content=big), c.post("/v1/detect", content=chunked()),
                   c.post("/v1/detect", files={"file": ("big.png", big)}),
                   c.post("/v1/classify", files=[("files", ("a.png", png_bytes())), ("files", ("b.png", big))])]
        for r in answers:
            assert r.status_code == 413 and r.json() == {"error": "upload too large: at most 4,096 bytes (0.00390625 MB)"}
        assert c.app.state.pool.held == 0  # every refused request gave its slot back
        assert c.post("/v1/detect", content=png_bytes()).status_code == 200


def test_bad_requests_name_what_is_wrong(holder, photo):
    with client(holder, max_crops=2) as c:
        r = c.post("/v1/detect", params={"operating_point": "nope"}, content=photo.read_bytes())
        assert r.status_code == 400 and r.json()["error"].startswith("the checkpoint has no operating point 'nope'")
        r = c.post("/v1/detect", params={"detector": "nope"}, content=photo.read_bytes())
        assert r.status_code == 400 and r.json()["error"].startswith("unknown detector 'nope'")
        r = c.post("/v1/detect", content=b"")
        assert r.status_code == 400 and r.json()["error"] == "empty file"
        r = c.post("/v1/classify", files=[("files", (f"{i}.png", png_bytes())) for i in range(3)])
        assert r.status_code == 400 and "Too many files" in r.json()["error"]
        r = c.post("/v1/classify", files=[("files", ("ok.png", png_bytes())), ("files", ("bad.png", b"text"))])
        assert r.status_code == 400 and r.json() == {"error": "not an image Pillow can read", "image": "bad.png"}
        r = c.post("/v1/detect", files={"file": ("tiny.png", png_bytes((4, 4)))})
        assert r.status_code == 400 and r.json()["image"] == "tiny.png" and r.json()["error"].startswith("too small")


def test_readyz_is_503_until_the_model_is_loaded_and_says_why_it_failed(tmp_path, photo):
    from fastapi.testclient import TestClient
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    holder = ModelHolder(Settings(checkpoint=bad, engine="torch"))
    with TestClient(create_app(holder.settings, holder)) as c:
        assert c.get("/healthz").status_code == 200
        r = c.post("/v1/detect", content=photo.read_bytes())
        assert r.status_code == 503 and r.headers["retry-after"]
        assert holder.wait(120)  # the load the app's start-up began has ended (failed)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert r.json()["error"].startswith("the model failed to load: ")
        assert counter(c.get("/metrics").text, "maskrec_model_ready") == 0


def test_the_openapi_page_lists_the_routes_and_needs_no_internet(holder):
    import re
    with client(holder) as c:
        page = c.get("/docs")
        assert page.status_code == 200
        # Swagger UI's script and style come from the server itself (a CDN is out of reach offline)
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
        for a in assets:
            assert a.startswith("/"), a
            assert c.get(a).status_code == 200, a
        spec = c.get("/openapi.json").json()
        assert {"/v1/detect", "/v1/classify", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
        body = spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
        assert {"multipart/form-data", "application/octet-stream"} <= set(body)


def test_busy_is_never_raised_below_capacity():
    pool = WorkPool(workers=2, queue=0)
    slots = [pool.reserve(), pool.reserve()]
    with pytest.raises(Busy) as e:
        pool.reserve()
    assert e.value.retry_after >= 1
    for s in slots:
        s.release()
    assert pool.held == 0
    pool.shutdown()
