"""N RTSP cameras through ``python -m maskrec serve --cameras``: each camera's processed FPS and lag,
the server's CPU and memory over the run (issue 38's bar: 8 cameras of 640x480 at 15 fps, each
processed at >= 7.5 frames/s with lag p95 <= 1 s, CPU and memory flat over 10 minutes).

    python bench/cameras.py [--cameras 8] [--seconds 600] [--fps 15] [--size 640x480] [--camera-workers N]
                            [--detect-every K] [--detector NAME] [--sample-s 5] [--out docs/cameras-DATE.json]

Each camera is ``tests/rtsp_server.RtspCamera``: ffmpeg sending a clip of the demo generator's faces
(made here: three faces drifting on a grey street, H.264, a keyframe a second) in a loop, in real
time, as RTP, relayed to the server over RTSP/TCP by a small server in this process. The server runs
as a user runs it (defaults included), on a free port of 127.0.0.1. Once every camera has processed
a frame, the run starts; every ``--sample-s`` it reads ``GET /v1/cameras`` (each camera's FPS and
lag p50/p95 over its last 10 s) and the server process's CPU time and resident memory (/proc: Linux).

Per camera: processed FPS over the whole run (frames processed / seconds), lag p50 (the median of
the 10-s windows' p50) and p95 (the worst window's p95, so a bad stretch is not averaged away),
frames decoded and dropped, reconnects. For the server: CPU % of one core (mean; first and last
fifth of the run) and RSS (first, last, and its slope in MB per minute by least squares), so "flat"
is a number. Prints the CPU it ran on; figures from different machines, or a machine busy with
something else, differ.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec.infer.probe import cpu_name  # noqa: E402
from maskrec.core.process import end_process  # noqa: E402
from tests.rtsp_server import RtspCamera, clip, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, resident MB) of process ``pid``, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:")) / 1024
    return cpu, rss


def start_server(args, camera_file: Path, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "maskrec", "serve", "--port", str(port), "--cameras", str(camera_file)]
    if args.camera_workers:
        cmd += ["--camera-workers", str(args.camera_workers)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_all_processing(proc, url: str, n: int, log_name: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); its log: {log_name}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the cameras were not all processed after {timeout:.0f} s; log: {log_name}")
        try:
            cams = httpx.get(f"{url}/v1/cameras", timeout=5).json()["cameras"]
            if len(cams) == n and all(c["frames"] > 0 for c in cams):
                return
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.5)  # polling the server until every camera has a processed frame


def slope_per_min(ts: list[float], values: list[float]) -> float:
    return float(np.polyfit(np.array(ts) / 60, values, 1)[0]) if len(ts) >= 3 else 0.0


def run(args) -> dict:
    w, h = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-cameras-"))
    movie = clip(work / "street.mp4", seconds=4, fps=args.fps, size=(w, h))
    cams = [RtspCamera(movie, path=f"cam{i}") for i in range(args.cameras)]
    for c in cams:
        c.start()
    lines = [f'[events]\ndir = "{work / "events"}"']  # the bench's records in its own folder, not the repo's events/
    for i, c in enumerate(cams):
        lines += [f'[[cameras]]\nname = "cam{i}"\nsource = "{c.url}"']
        if args.detect_every:
            lines += [f"detect_every = {args.detect_every}"]
        if args.detector:
            lines += [f'detector = "{args.detector}"']
    camera_file = work / "cameras.toml"
    camera_file.write_text("\n".join(lines) + "\n")
    log = open(work / "server.log", "wb")
    proc, url = start_server(args, camera_file, log)
    samples = []
    try:
        wait_all_processing(proc, url, args.cameras, log.name)
        ready = httpx.get(f"{url}/readyz").json()
        first = {c["name"]: c for c in httpx.get(f"{url}/v1/cameras").json()["cameras"]}
        t0 = time.monotonic()
        cpu0, _ = proc_usage(proc.pid)
        last_cpu, last_t = cpu0, t0
        while (now := time.monotonic()) - t0 < args.seconds:
            time.sleep(min(args.sample_s, args.seconds - (now - t0)))  # the sampling period
            t = time.monotonic()
            cpu, rss = proc_usage(proc.pid)
            cameras = httpx.get(f"{url}/v1/cameras", timeout=30).json()["cameras"]
            samples.append({"t": t - t0, "cpu_pct": 100 * (cpu - last_cpu) / (t - last_t), "rss_mb": rss,
                            "cameras": {c["name"]: {k: c[k] for k in ("fps", "lag_p50_s", "lag_p95_s", "state")}
                                        for c in cameras}})
            last_cpu, last_t = cpu, t
        wall = time.monotonic() - t0
        cpu_end, _ = proc_usage(proc.pid)
        last = {c["name"]: c for c in httpx.get(f"{url}/v1/cameras").json()["cameras"]}
    finally:
        end_process(proc)
        log.close()
        for c in cams:
            c.stop()
    rows = []
    for name, end in last.items():
        p50s = [s["cameras"][name]["lag_p50_s"] for s in samples if s["cameras"][name]["lag_p50_s"] is not None]
        p95s = [s["cameras"][name]["lag_p95_s"] for s in samples if s["cameras"][name]["lag_p95_s"] is not None]
        frames = end["frames"] - first[name]["frames"]
        decoded = end["decoded"] - first[name]["decoded"]
        rows.append({"camera": name, "fps": frames / wall, "lag_p50_s": float(np.median(p50s)) if p50s else None,
                     "lag_p95_s": max(p95s) if p95s else None, "frames": frames, "decoded": decoded,
                     "dropped": decoded - frames, "reconnects": end["reconnects"], "state": end["state"]})
    ts = [s["t"] for s in samples]
    cpu = [s["cpu_pct"] for s in samples]
    rss = [s["rss_mb"] for s in samples]
    fifth = max(1, len(samples) // 5)
    server = {"cpu_pct_mean": 100 * (cpu_end - cpu0) / wall,
              "cpu_pct_first_fifth": float(np.mean(cpu[:fifth])), "cpu_pct_last_fifth": float(np.mean(cpu[-fifth:])),
              "rss_mb_first": rss[0], "rss_mb_last": rss[-1], "rss_mb_max": max(rss),
              "rss_mb_per_min": slope_per_min(ts, rss), "cpu_pct_per_min": slope_per_min(ts, cpu)}
    ok = [r for r in rows if r["fps"] >= 7.5 and r["lag_p95_s"] is not None and r["lag_p95_s"] <= 1.0]
    return {"date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "load_avg_at_end": os.getloadavg(), "cameras": args.cameras, "seconds": round(wall, 1),
            "stream": f"{w}x{h} H.264 at {args.fps} fps over RTSP/TCP", "checkpoint": ready["checkpoint"],
            "engine": ready["engine"]["engine"], "camera_workers": args.camera_workers or "default",
            "detect_every": args.detect_every or "default", "detector": rows and last["cam0"]["detector"],
            "bar": "each camera >= 7.5 fps processed and lag p95 <= 1 s", "cameras_meeting_bar": len(ok),
            "per_camera": rows, "server": server, "samples": samples}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--camera-workers", type=int, help="the server's --camera-workers (default: its own)")
    ap.add_argument("--detect-every", type=int, help="each camera's detect_every (default: the camera file's)")
    ap.add_argument("--detector", help="each camera's detector (default: the live one)")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--out", type=Path, help="write the figures (and every sample) here as JSON")
    args = ap.parse_args(argv)
    out = run(args)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    s = out["server"]
    print(f"CPU: {out['cpu']} ({out['cores']} cores; load average at the end {out['load_avg_at_end'][0]:.1f}); "
          f"{out['cameras']} cameras, {out['stream']}, {out['seconds']:.0f} s; {out['checkpoint']}, detector "
          f"{out['detector']}, {out['engine']} engine, camera workers {out['camera_workers']}, "
          f"detect every {out['detect_every']}")
    print(f"{'camera':>8} {'fps':>6} {'lag p50':>8} {'lag p95':>8} {'frames':>7} {'dropped':>8} {'reconn':>6}")
    for r in out["per_camera"]:
        p50 = f"{r['lag_p50_s']:8.3f}" if r["lag_p50_s"] is not None else f"{'-':>8}"
        p95 = f"{r['lag_p95_s']:8.3f}" if r["lag_p95_s"] is not None else f"{'-':>8}"
        print(f"{r['camera']:>8} {r['fps']:6.2f} {p50} {p95} {r['frames']:7d} {r['dropped']:8d} {r['reconnects']:6d}")
    print(f"server CPU {s['cpu_pct_mean']:.0f}% of a core (first fifth {s['cpu_pct_first_fifth']:.0f}%, last "
          f"{s['cpu_pct_last_fifth']:.0f}%); RSS {s['rss_mb_first']:.0f} -> {s['rss_mb_last']:.0f} MB "
          f"({s['rss_mb_per_min']:+.2f} MB/min)")
    print(f"{out['cameras_meeting_bar']} of {out['cameras']} cameras meet the bar ({out['bar']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
