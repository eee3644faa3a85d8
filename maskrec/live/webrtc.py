"""WebRTC settings for the Recognize page's live stream (streamlit-webrtc), from the environment.

    webrtc_streamer(..., rtc_configuration={"iceServers": ice_servers()})

On 127.0.0.1 no STUN/TURN server is needed: host candidates connect directly and nothing leaves
the machine (an empty ``iceServers`` list also stops streamlit-webrtc from fetching public ones).
A browser on another machine needs HTTPS (browsers offer cameras only to https:// or localhost)
and usually a TURN server: ``$MASKREC_ICE_SERVERS``.
"""
from __future__ import annotations

import json
import os

ICE_ENV = "MASKREC_ICE_SERVERS"


def ice_servers(env: str = ICE_ENV) -> list[dict]:
    """ICE servers for WebRTC from ``$MASKREC_ICE_SERVERS`` (a JSON list), else none.

    None is right on 127.0.0.1. Off localhost, a browser behind NAT needs a TURN server, e.g.
    ``[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]``.
    Raises ValueError with the reason when the variable is not such a list.
    """
    raw = os.environ.get(env, "").strip()
    if not raw:
        return []
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"${env} is not JSON: {e}") from None
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError(f'${env} must be a JSON list of {{"urls": ...}} objects')
    return servers
