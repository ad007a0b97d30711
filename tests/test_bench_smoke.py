"""The benchmark keeps working: bench/run.py at N=20, one run of each watcher cycle.

Timings are not asserted (they belong in BENCHMARKS.md, not in CI); the run itself checks
that every cycle did what it claims (all first captures, all unchanged, all 304s, the
changed pages parsed), and fails otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_at_n20(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--n", "20", "--runs", "1",
         "--no-peer", "--no-large", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["n"] == 20
    cycles = results["results"]
    assert list(cycles) == ["cold", "unchanged", "unchanged-304", "changed-10%"]
    for cycle, tools in cycles.items():
        assert set(tools) == {"watcher", "floor"}, cycle
        (watcher,) = tools["watcher"]
        assert watcher["wall"] > 0 and watcher["rss_mb"] > 0, cycle
    assert cycles["cold"]["watcher"][0]["summary"] == {"first": 20}
    assert cycles["unchanged-304"]["watcher"][0]["summary"] == {"not_modified": 20}
    assert cycles["cold"]["watcher"][0]["bytes_added"] > 20 * 10_000  # bodies were stored
    assert "| cold |" in (tmp_path / "results.md").read_text()
