"""What a ``serve`` process is told: one frozen dataclass (``dataclasses.replace`` makes a variant),
and the start-up rule that an address beyond this machine needs an API key."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from maskrec import faces
from maskrec.config import DEFAULT_CHECKPOINT

KEY_ENV = "MASKREC_API_KEY"  # the API key from the environment: not in `ps` as --api-key is
# The app's upload limit (ui/common.py MAX_UPLOAD_MB, .streamlit/config.toml maxUploadSize; a test keeps
# the three in step). Memory does not follow it: a body is spooled to disk past SPOOL_BYTES, and only
# requests holding a queue slot read theirs.
MAX_UPLOAD_MB = 1024
SPOOL_BYTES = 1 << 20
MAX_CROPS = 256  # face crops in one POST /v1/classify: one batch of the classifier


def default_workers() -> int:
    """Inference threads: 2, or 1 on a one-core machine. A Recognizer serialises its frames, so a
    second worker overlaps one request's decoding with another's detection rather than doubling it."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    checkpoint: Path = DEFAULT_CHECKPOINT
    detector: str = faces.PHOTO_DEFAULT        # POST /v1/detect's default; ?detector= picks another
    operating_point: str | None = None         # None: the checkpoint's default; ?operating_point= per request
    engine: str | None = None                  # None: the fastest measured here (maskrec.infer.predictor)
    workers: int = default_workers()
    queue: int = 8                             # requests waiting beyond those running; more get 503
    api_key: str | None = None                 # None: no key asked (loopback only, see check_exposure)
    max_upload_mb: float = MAX_UPLOAD_MB
    max_crops: int = MAX_CROPS

    def __post_init__(self):
        if self.workers < 1 or self.queue < 0:
            raise ValueError(f"--workers must be >= 1 and --queue >= 0 (got {self.workers} and {self.queue})")
        if self.max_upload_mb <= 0:
            raise ValueError(f"--max-upload-mb must be > 0 (got {self.max_upload_mb})")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost); 0.0.0.0, :: or a name
    reach further."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse (ValueError, said in one line) to listen beyond this machine without an API key:
    anyone who can reach the port could otherwise use the model."""
    if api_key is None and not is_loopback(host):
        raise ValueError(f"--host {host} listens beyond this machine, so an API key is required: pass --api-key "
                         f"or set ${KEY_ENV} (e.g. to the output of "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); "
                         "clients then send `Authorization: Bearer <key>`")
