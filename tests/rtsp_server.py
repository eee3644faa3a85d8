"""An RTSP camera for tests and benches: ffmpeg sends a clip, looped at its own frame rate, as RTP,
and a small RTSP server here hands that RTP to its clients over TCP (interleaved, as a camera does
for ``rtsp_transport=tcp``).

    with RtspCamera(clip, port) as cam:      # rtsp://127.0.0.1:<port>/cam
        ...
        cam.stop()                           # the camera goes away: ffmpeg killed, every connection closed
        cam.start()                          # and comes back on the same port

Why not ffmpeg alone: its ``-rtsp_flags listen`` makes it an RTSP server that *receives* a stream
(ANNOUNCE/RECORD), not one that serves a player (DESCRIBE/PLAY); Debian has no mediamtx, and
GStreamer's RTSP server would add gi and plugin packages. So ffmpeg does what it does well (read the
clip in real time, packetise H.264 as RTP and write its SDP) and this file answers OPTIONS, DESCRIBE,
SETUP, PLAY and TEARDOWN and relays the packets: ~150 lines, no other dependency.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

FFMPEG = shutil.which("ffmpeg")


def clip(path: Path, seconds: float = 3.0, fps: int = 15, size=(640, 480), faces=((0, 40), (3, 240), (5, 440)),
         gop: int | None = None) -> Path:
    """An H.264 MP4 of the demo generator's faces on a grey street, drifting 2 px a frame to the right
    and back (a moving scene that loops without a jump): ``faces`` are (demo face index, x) pairs for
    640 px; a keyframe every ``gop`` frames (default: every second)."""
    import av
    import numpy as np
    from PIL import Image

    from maskrec.data import synth
    w, h = size
    side = h // 3
    rendered = [(synth.render(index, seed=0)[0].resize((side, side)), x) for index, x in faces]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(gop or fps), "bf": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        n = round(seconds * fps)
        for i in range(n):
            canvas = Image.new("RGB", (w, h), (200, 200, 200))
            drift = 2 * min(i, n - i)
            for face, x in rendered:
                canvas.paste(face, (x * w // 640 + drift, h // 3))
            for p in s.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _udp_pair() -> tuple[socket.socket, socket.socket, int]:
    """Two UDP sockets on ports P (RTP, even) and P + 1 (RTCP), as ffmpeg's RTP muxer sends them."""
    for _ in range(100):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                b.bind(("127.0.0.1", port + 1))
                return a, b, port
            except OSError:
                b.close()
        a.close()
    raise OSError("no free pair of UDP ports")


class RtspCamera:
    """An RTSP camera at rtsp://127.0.0.1:<port>/<path> playing ``clip`` in a loop (see the module)."""

    def __init__(self, clip: Path, port: int | None = None, path: str = "cam", user: str | None = None,
                 password: str | None = None):
        if FFMPEG is None:
            raise RuntimeError("ffmpeg is not installed")
        self.clip, self.port, self.path = Path(clip), port or free_port(), path
        self.user, self.password = user, password  # not checked: a real camera would; the URL carries them
        self.clients = 0  # connections accepted so far (over all starts)
        self._proc: subprocess.Popen | None = None
        self._socks: list[socket.socket] = []
        self._playing: list[socket.socket] = []
        self._lock = threading.Lock()
        self._running = False

    @property
    def url(self) -> str:
        cred = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{cred}127.0.0.1:{self.port}/{self.path}"

    def __enter__(self) -> "RtspCamera":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        rtp, rtcp, port = _udp_pair()
        sdp = Path(tempfile.mkdtemp(prefix="rtsp-")) / "s.sdp"
        self._proc = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(self.clip),
             "-map", "0:v:0", "-c", "copy", "-f", "rtp", "-sdp_file", str(sdp), "-pkt_size", "1200",
             f"rtp://127.0.0.1:{port}?rtcpport={port + 1}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (sdp.exists() and "m=video" in sdp.read_text()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ffmpeg did not start sending {self.clip}")
            time.sleep(0.02)  # ffmpeg writes the SDP once its RTP muxer is set up
        self._sdp = self._described(sdp.read_text())
        shutil.rmtree(sdp.parent, ignore_errors=True)
        listen = socket.socket()
        listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listen.bind(("127.0.0.1", self.port))
        listen.listen(16)
        self._socks = [rtp, rtcp, listen]
        self._running = True
        for target, args in ((self._accept, (listen,)), (self._relay, (rtp, 0)), (self._relay, (rtcp, 1))):
            threading.Thread(target=target, args=args, daemon=True, name="rtsp-camera").start()

    def stop(self) -> None:
        """The camera goes away: ffmpeg killed, the port closed, every client cut off."""
        self._running = False
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        with self._lock:
            socks, self._socks, self._playing = self._socks + self._playing, [], []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    @staticmethod
    def _described(sdp: str) -> str:
        """ffmpeg's SDP as a DESCRIBE answer: no address or port of its own, one control URL per stream."""
        out = []
        for line in sdp.splitlines():
            if line.startswith("c="):
                line = "c=IN IP4 0.0.0.0"
            elif line.startswith("m=video"):
                line = "m=video 0 " + line.split(" ", 2)[2]
            out.append(line)
            if line.startswith("m=video"):
                out.append("a=control:track0")
        return "\r\n".join(out) + "\r\n"

    def _accept(self, listen: socket.socket) -> None:
        while self._running:
            try:
                conn, _ = listen.accept()
            except OSError:
                return
            with self._lock:
                if not self._running:
                    conn.close()
                    return
                self._socks.append(conn)
                self.clients += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="rtsp-client").start()

    def _relay(self, sock: socket.socket, channel: int) -> None:
        """RTP (channel 0) or RTCP (channel 1) from ffmpeg to every playing client, interleaved."""
        while self._running:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            frame = b"$" + bytes([channel]) + len(data).to_bytes(2, "big") + data
            with self._lock:
                playing = list(self._playing)
            for c in playing:
                try:
                    c.sendall(frame)
                except OSError:  # the client went away (or is too slow: its timeout)
                    with self._lock:
                        if c in self._playing:
                            self._playing.remove(c)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        buf = b""
        try:
            while self._running:
                if buf[:1] == b"$":  # the client's RTCP, interleaved: read past it
                    if len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[2:4], "big"):
                        buf = buf[4 + int.from_bytes(buf[2:4], "big"):]
                        continue
                elif b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    if not self._answer(conn, head.decode("latin-1")):
                        return
                    continue
                try:
                    data = conn.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    return
                buf += data
        except OSError:
            return
        finally:
            with self._lock:
                if conn in self._playing:
                    self._playing.remove(conn)
            conn.close()

    def _answer(self, conn: socket.socket, head: str) -> bool:
        lines = head.split("\r\n")
        method = lines[0].split(" ", 1)[0]
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        cseq = fields.get("cseq", "0")
        extra, body, status = [], "", "200 OK"
        if method == "OPTIONS":
            extra.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif method == "DESCRIBE":
            body = self._sdp
            extra += [f"Content-Base: rtsp://127.0.0.1:{self.port}/{self.path}/", "Content-Type: application/sdp"]
        elif method == "SETUP":
            if "TCP" not in fields.get("transport", ""):
                status = "461 Unsupported Transport"
            else:
                extra += ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 1;timeout=60"]
        elif method == "PLAY":
            extra += ["Session: 1", "Range: npt=0.000-"]
        elif method not in ("TEARDOWN", "GET_PARAMETER", "SET_PARAMETER", "PAUSE"):
            status = "405 Method Not Allowed"
        reply = f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n" + "".join(e + "\r\n" for e in extra)
        reply += f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        conn.sendall(reply.encode())
        if method == "PLAY":
            with self._lock:
                self._playing.append(conn)
        return method != "TEARDOWN"
