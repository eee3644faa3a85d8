"""One module per bench section; each ``bench_<name>(...) -> list[dict]`` returns rows of
``bench.common.row`` (bench.suite.run calls them in SECTIONS order)."""
