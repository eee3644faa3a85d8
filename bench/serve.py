"""``POST /v1/detect`` throughput and latency at 1, 8 and 64 concurrent clients (issue 38).

    python bench/serve.py [--requests N] [--clients 1,8,64] [--image PHOTO] [--workers N] [--queue N]
                          [--detector NAME] [--engine NAME] [--checkpoint CKPT] [--json] [--out FILE.json]

Starts ``python -m maskrec serve`` on a free port of 127.0.0.1 (as a user would, defaults included),
waits for /readyz, sends a few warm-up requests, then for each level of concurrency runs
max(N, clients) requests from that many client threads, each on its own keep-alive connection,
every one uploading the same photo. Per level: requests answered 200, refused (503: the queue was
full; the server's queue defaults to the largest level here, so none should be), throughput
(answered per second of wall time) and p50 / p95 latency of the answered ones. The photo defaults
to a 640x480 scene of three of the demo generator's faces (made here, so the bench runs anywhere);
--image measures one of yours. Prints the CPU it ran on and the load average at the end: figures
from different machines, or a machine busy with something else, differ. ``--out`` writes the
figures as JSON (with the date) too.
"""
from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec.data import synth  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402
from maskrec.core.process import end_process  # noqa: E402


def demo_scene() -> bytes:
    """Three of the demo generator's faces on a grey 640x480 street, as a JPEG."""
    canvas = Image.new("RGB", (640, 480), (200, 200, 200))
    for index, x in ((0, 40), (3, 240), (5, 440)):
        face, _ = synth.render(index, seed=0)
        canvas.paste(face.resize((160, 160)), (x, 150))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, queue: int, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "maskrec", "serve", "--port", str(port), "--queue", str(queue)]
    for flag, value in (("--workers", args.workers), ("--detector", args.detector), ("--engine", args.engine),
                        ("--checkpoint", args.checkpoint)):
        if value is not None:
            cmd += [flag, str(value)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); its log: {log.name}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the server was not ready after 600 s; its log: {log.name}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling /readyz


def level(url: str, photo: bytes, clients: int, requests: int) -> dict:
    """``requests`` POSTs of ``photo`` from ``clients`` threads; latencies of those answered 200."""
    todo = iter(range(requests))
    lock = threading.Lock()
    lat: list[float] = []
    codes: dict[int, int] = {}

    def client():
        with httpx.Client(base_url=url, timeout=300) as c:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                t = time.perf_counter()
                r = c.post("/v1/detect", content=photo, headers={"Content-Type": "image/jpeg"})
                dt = time.perf_counter() - t
                with lock:
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        lat.append(dt)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"clients": clients, "requests": requests, "ok": codes.get(200, 0), "rejected": codes.get(503, 0),
            "other": {c: n for c, n in codes.items() if c not in (200, 503)},
            "per_s": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
            "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None, "wall_s": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per level (at least one per client)")
    ap.add_argument("--clients", default="1,8,64", help="levels of concurrency, comma-separated")
    ap.add_argument("--image", type=Path, help="the photo to send (default: a generated 640x480 scene)")
    ap.add_argument("--workers", type=int, help="the server's --workers (default: its own)")
    ap.add_argument("--queue", type=int, help="the server's --queue (default: the largest level)")
    ap.add_argument("--detector")
    ap.add_argument("--engine")
    ap.add_argument("--checkpoint")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON as well")
    args = ap.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]
    photo = args.image.read_bytes() if args.image else demo_scene()
    with tempfile.NamedTemporaryFile("wb", prefix="bench-serve-", suffix=".log", delete=False) as log:
        proc, url = start_server(args, args.queue if args.queue is not None else max(levels), log)
        try:
            ready = httpx.get(f"{url}/readyz").json()
            for _ in range(args.warmup):
                httpx.post(f"{url}/v1/detect", content=photo, timeout=300).raise_for_status()
            rows = [level(url, photo, c, max(args.requests, c)) for c in levels]
        finally:
            end_process(proc)
    os.unlink(log.name)
    out = {"date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
           "load_avg_at_end": os.getloadavg(), "image": str(args.image or "generated 640x480 scene"),
           "checkpoint": ready["checkpoint"], "detector": ready["detector"], "engine": ready["engine"]["engine"],
           "workers": args.workers, "queue": args.queue if args.queue is not None else max(levels), "levels": rows}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"CPU: {out['cpu']} ({out['cores']} cores; load average at the end {out['load_avg_at_end'][0]:.1f}); "
          f"{out['checkpoint']}, detector {out['detector']}, "
          f"{out['engine']} engine; server --workers {args.workers or 'default'} --queue {out['queue']}; "
          f"photo: {out['image']}")
    print(f"{'clients':>7} {'requests':>8} {'ok':>5} {'503':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for r in rows:
        p50 = f"{r['p50_ms']:8.1f}" if r["p50_ms"] is not None else f"{'-':>8}"
        p95 = f"{r['p95_ms']:8.1f}" if r["p95_ms"] is not None else f"{'-':>8}"
        print(f"{r['clients']:7d} {r['requests']:8d} {r['ok']:5d} {r['rejected']:5d} {r['per_s']:7.2f} {p50} {p95}"
              + (f"  other: {r['other']}" if r["other"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
