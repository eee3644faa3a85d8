"""Real cameras for ``maskrec serve`` (issue 38): each camera of a TOML file is read on its own thread,
its frames detected, tracked and voted as ``video`` does (the one ``live.schedule``), and people who
stay bare raise events.

    config.py   the camera file: cameras (source, detector, detect-every, zones, rules), MQTT, webhooks
    frame.py    ``CameraFrame``: what a camera hands its listeners after each processed frame
    source.py   decoding a source (RTSP, HTTP MJPEG, a looped file, a device) with PyAV; reconnect
    camera.py   one camera's thread: newest frame only, detect/track/vote, state, FPS and lag
    hub.py      all cameras of a file, started and stopped together
    events.py   rules -> events (one per person, cooldown), evidence JPEGs, events.jsonl
    sinks.py    where events go besides the disk: webhooks (retries, bounded queue), MQTT

How to run it: docs/serve.md.
"""
