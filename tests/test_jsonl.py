"""Reading an append-only JSONL file from a point in time on (maskrec.core.jsonl): the same records a whole
read finds, from an offset near the time asked for, whatever the lines' small disorder or a torn line."""
from __future__ import annotations

import json
import random

import pytest

from maskrec.core import jsonl


def states_file(path, n=40_000, jitter_s=20.0, torn_at=(1234, 20_000)):
    """A camera server's states.jsonl of three cameras every 5 s, each line's time up to ``jitter_s`` off its
    place (cameras lagging each other), two torn lines and a foreign one in the middle; -> the records."""
    rng = random.Random(0)
    t0, recs = 1_765_000_000.0, []
    with open(path, "w") as fh:
        for i in range(n):
            rec = {"t": t0 + i * 5 / 3 + rng.uniform(-jitter_s, jitter_s), "camera": f"c{i % 3}", "people": i % 4}
            recs.append(rec)
            fh.write(json.dumps(rec) + "\n")
            if i in torn_at:
                fh.write('{"t": 17650')  # a torn write, then the next line
                fh.write("\n[1, 2]\n")
    return recs


def within(recs, lo, hi, key="t"):
    return [r for r in recs if (lo is None or r[key] >= lo) and (hi is None or r[key] < hi)]


@pytest.mark.parametrize("hours_ago, span_h", [(1, 1), (24, 2), (0.2, None), (1000, None), (-1, 1), (18, 0.001)])
def test_a_time_range_reads_the_records_a_whole_read_finds(tmp_path, hours_ago, span_h):
    recs = states_file(tmp_path / "states.jsonl")
    end = max(r["t"] for r in recs)
    lo = end - hours_ago * 3600
    hi = lo + span_h * 3600 if span_h is not None else None
    got = [r for r in jsonl.read(tmp_path / "states.jsonl", lo, hi) if isinstance(r, dict)]
    assert within(got, lo, hi) == within(recs, lo, hi)
    assert len(within(recs, lo, hi)) == len(within(got, lo, hi))


def test_it_starts_near_the_time_asked_for_not_at_the_top(tmp_path):
    """The bisection lands within a block of the first line it must keep (SLACK_S before the time asked for),
    never after it: the last hour of ~18 days of one camera's states is read, not the 18 days."""
    path = tmp_path / "states.jsonl"
    states_file(path, n=300_000, torn_at=(5, 150_000))
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    pos, first = 0, None
    last_t = json.loads(lines[-1])["t"]
    since = last_t - 3600
    for line in lines:
        try:
            t = json.loads(line)["t"]
        except (ValueError, TypeError, KeyError):
            t = None
        if t is not None and t >= since - jsonl.SLACK_S and first is None:
            first = pos
        pos += len(line)
    off = jsonl.offset(path, since)
    assert off <= first, "it would skip a line of the range"
    assert first - off <= 2 * jsonl.BLOCK, (first, off)
    assert off > 0.9 * len(data)


def test_no_file_and_an_empty_file_are_no_records(tmp_path):
    assert jsonl.read(tmp_path / "none.jsonl", 0.0) == []
    (tmp_path / "empty.jsonl").write_text("")
    assert jsonl.read(tmp_path / "empty.jsonl", 0.0, 1.0) == [] and jsonl.offset(tmp_path / "empty.jsonl", 5.0) == 0


def test_people_are_read_by_when_they_left(tmp_path):
    """people.jsonl is written as people leave (about in "last" order); "first" can be long before."""
    path, recs = tmp_path / "people.jsonl", []
    with open(path, "w") as fh:
        for i in range(20_000):
            last = 1_765_000_000.0 + i * 10
            rec = {"camera": "door", "first": last - (3000 if i % 50 == 0 else 20), "last": last, "track": i}
            recs.append(rec)
            fh.write(json.dumps(rec) + "\n")
    since = recs[-1]["last"] - 7200
    got = jsonl.read(path, since, key="last")
    assert [r for r in got if r["last"] >= since] == [r for r in recs if r["last"] >= since]
    assert len(got) < len(recs) / 10
