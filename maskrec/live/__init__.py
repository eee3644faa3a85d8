"""Recognition in photos and streams.

recognize (the ``Recognizer``: find faces, classify each, draw boxes and tags), track (following
people through frames; ``vote`` is one track's evidence), schedule (detect on one frame in k and
carry the people between: the one schedule of the live stream and of ``video``), channel (the live
stream's worker-to-page ``LiveBuffer`` and the WebRTC frame callback), gradcam (which pixels drove a
decision), photo (one photo in, the JSON of ``predict --json`` and ``serve`` out), webrtc (ICE settings).
"""
