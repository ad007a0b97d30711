"""watcher's benchmark: whole `watcher check` processes against a local corpus of agency pages.

    .venv/bin/python bench/run.py                 # what `make bench` runs (~10 minutes)
    .venv/bin/python bench/run.py --n 20 --runs 1 --no-peer --no-large   # smoke (seconds)

A corpus server (bench/corpus.py, its own process) serves N pages of ~110 KB from 50 loopback
addresses. Each cycle is timed as a whole process: wall time, CPU (user + sys) and peak RSS
from ``os.wait4``, peak RSS of the whole process tree sampled from /proc, and the bytes the
cycle added under the data dir. Beside watcher, the same cycles run through

- the floor (bench/floor.py): a bare httpx client that only fetches and hashes, with the same
  per-host concurrency, and
- the peer: urlwatch 2.29 in its own venv (bench/out/urlwatch-venv), each job with a ``css``
  filter for the listing and ``html2text``.

Cycles (each run starts from a fresh data dir; every later cycle starts from a copy of the
state the cold cycle left, so each cycle is measured from the same starting point):

    cold           first check of every target (server sends ETag/Last-Modified)
    unchanged      same bodies, server sends no validators (200, body hash unchanged)
    unchanged-304  same bodies, server answers the validators with 304
    changed-10%    every 10th page changed (items added or removed), no validators
    large-first    one 5 MB listing of 20,000 items, first check
    large-changed  the same page with 100 items removed and 100 added

Figures are the median of ``--runs`` runs with min and max. Results go to bench/out/results.json
and bench/out/results.md; the table is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
URLWATCH_VERSION = "2.29"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SETTINGS = "settings:\n  timeout: 30s\n  retries: 0\n  per_host: {concurrency: 2, delay: 0s}\n"

# The targets of issue 7, evaluated at N=1000 only.
TARGETS = {
    "cold": {"wall": 40.0},
    "unchanged": {"wall": 5.0, "floor_ratio": 3.0, "bytes_per_target": 300, "peer": True},
    "unchanged-304": {"wall": 4.0, "bytes_per_target": 300, "peer": True},
    "changed-10%": {"wall": 8.0},
    "large-first": {"wall": 5.0, "rss_mb": 500},
    "large-changed": {"wall": 5.0, "rss_mb": 500},
}
RSS_MB = 300  # every 1,000-target cycle


@dataclass(frozen=True)
class Cycle:
    name: str
    validators: bool
    changed: bool = False
    large: bool = False  # the 5 MB page instead of the N targets
    large_version: int = 0
    first: bool = False  # starts from an empty data dir


CYCLES = [
    Cycle("cold", validators=True, first=True),
    Cycle("unchanged", validators=False),
    Cycle("unchanged-304", validators=True),
    Cycle("changed-10%", validators=False, changed=True),
]
LARGE_CYCLES = [
    Cycle("large-first", validators=True, large=True, first=True),
    Cycle("large-changed", validators=True, large=True, large_version=1),
]


@dataclass
class Measure:
    wall: float
    user: float
    sys: float
    rss_mb: float  # max of ru_maxrss (largest single process) and the sampled tree sum
    bytes_added: int
    exit_code: int
    summary: dict[str, Any] = field(default_factory=dict)
    server_cpu: float = 0.0  # CPU seconds the corpus server spent answering this process

    @property
    def cpu(self) -> float:
        return self.user + self.sys


# --- measuring one process ------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc), 0 where unreadable."""
    total, todo, page = 0, [pid], os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(self.every)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def dir_bytes(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def measure(
    cmd: list[str], *, log: Path, size_of: Path | None = None, env: dict[str, str] | None = None
) -> tuple[Measure, str]:
    """Run ``cmd`` to completion; return its figures and its stdout."""
    before = dir_bytes(size_of)
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        sampler = RssSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak_tree = sampler.stop()
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    rss_mb = max(usage.ru_maxrss * 1024, peak_tree) / 2**20  # ru_maxrss is KB on Linux
    m = Measure(
        wall=wall,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        rss_mb=rss_mb,
        bytes_added=dir_bytes(size_of) - before,
        exit_code=proc.returncode,
    )
    return m, stdout


def fail(what: str, log: Path, detail: str) -> None:
    err = log.with_suffix(".err")
    tail = err.read_text(errors="replace")[-3000:] if err.exists() else ""
    raise SystemExit(f"bench: {what}: {detail}\n--- {err} ---\n{tail}")


# --- the corpus server ----------------------------------------------------------------------


class Corpus:
    def __init__(self, n: int, single_host: bool, large: bool) -> None:
        cmd = [sys.executable, str(BENCH / "corpus.py"), "--n", str(n)]
        cmd += ["--single-host"] if single_host else []
        cmd += ["--large"] if large else []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the corpus server did not start")
        info = json.loads(line)
        self.port: int = info["port"]
        self.hosts: list[str] = info["hosts"]

    def url(self, i: int) -> str:
        return f"http://{self.hosts[i % len(self.hosts)]}:{self.port}/t/{i}"

    @property
    def large_url(self) -> str:
        return f"http://{self.hosts[0]}:{self.port}/large"

    def set(self, **state: bool) -> None:
        query = "&".join(f"{k}={int(v)}" for k, v in state.items())
        with urlopen(f"http://{self.hosts[0]}:{self.port}/_bench/state?{query}") as r:
            got = json.loads(r.read())
        assert all(got[k] == v for k, v in state.items()), got

    def cpu(self) -> float:
        """CPU seconds the server has used so far (Linux), to show it is not the bottleneck."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- the three clients ----------------------------------------------------------------------


def changed_count(n: int) -> int:
    sys.path.insert(0, str(BENCH))
    from corpus import changed

    return sum(1 for i in range(n) if changed(i))


class Watcher:
    """`watcher check` as a user runs it, against its own data dir."""

    name = "watcher"

    def __init__(self, work: Path, urls: list[tuple[str, str]]) -> None:
        self.config = work / "targets.yaml"
        lines = [SETTINGS, "targets:\n"]
        for target_id, url in urls:
            lines.append(f"  - id: {target_id}\n    name: Field Office {target_id}\n")
            lines.append(f"    url: {url}\n")
        self.config.write_text("".join(lines))

    def run(self, state: Path, at: datetime, log: Path) -> tuple[Measure, Counter[str]]:
        cmd = [str(VENV_BIN / "watcher"), "check", "--config", str(self.config)]
        cmd += ["--data-dir", str(state), "--json", "--no-notify", "--at", at.isoformat()]
        m, out = measure(cmd, log=log, size_of=state)
        if m.exit_code not in (0, 1):
            fail("watcher check failed", log, f"exit {m.exit_code}")
        try:
            report = json.loads(out)
        except ValueError:
            fail("watcher check printed no JSON report", log, out[:300])
        outcomes = Counter(t["outcome"] for t in report["targets"])
        m.summary = dict(outcomes)
        return m, outcomes

    @staticmethod
    def fresh(path: Path) -> None:
        path.mkdir(parents=True)


class Floor:
    name = "floor"

    def __init__(self, work: Path, urls: list[tuple[str, str]]) -> None:
        self.urls = work / "urls.txt"
        self.urls.write_text("".join(u + "\n" for _, u in urls))

    def run(self, state: Path, at: datetime, log: Path) -> tuple[Measure, Counter[str]]:
        cmd = [sys.executable, str(BENCH / "floor.py"), str(self.urls), str(state / "state.json")]
        m, out = measure(cmd, log=log, size_of=state)
        if m.exit_code != 0:
            fail("the floor client failed", log, f"exit {m.exit_code}")
        statuses = Counter(json.loads(out)["statuses"])
        m.summary = dict(statuses)
        return m, statuses

    @staticmethod
    def fresh(path: Path) -> None:
        path.mkdir(parents=True)


_SUMMARY_LINE = re.compile(r"^\d+\. (NEW|CHANGED|UNCHANGED|ERROR): ", re.MULTILINE)


class Urlwatch:
    """urlwatch 2.29 in its own venv; its own concurrency (a pool of 10 threads)."""

    name = "urlwatch"

    def __init__(self, work: Path, urls: list[tuple[str, str]], venv: Path) -> None:
        self.bin = venv / "bin" / "urlwatch"
        self.jobs = work / "urls.yaml"
        self.config = work / "urlwatch.yaml"
        docs = [
            json.dumps(
                {
                    "name": target_id,
                    "url": url,
                    "filter": [{"css": "main .view-content"}, "html2text"],
                }
            )
            for target_id, url in urls
        ]
        self.jobs.write_text("\n---\n".join(docs) + "\n")
        config = {
            "display": {"new": True, "error": True, "unchanged": True},
            "report": {"stdout": {"enabled": True, "color": False}},
        }
        self.config.write_text(json.dumps(config))
        self.env = dict(os.environ)
        self.env.update(XDG_CONFIG_HOME=str(work / "xdg"), XDG_CACHE_HOME=str(work / "xdg"))

    def run(self, state: Path, at: datetime, log: Path) -> tuple[Measure, Counter[str]]:
        cmd = [str(self.bin), "--urls", str(self.jobs), "--config", str(self.config)]
        cmd += ["--hooks", str(state / "hooks.py"), "--cache", str(state / "cache.db")]
        m, out = measure(cmd, log=log, size_of=state, env=self.env)
        if m.exit_code != 0:
            fail("urlwatch failed", log, f"exit {m.exit_code}")
        # The summary at the top of the text report: "01. NEW: t0005".
        kinds = Counter(m.group(1) for m in _SUMMARY_LINE.finditer(out))
        m.summary = dict(kinds)
        return m, kinds

    @staticmethod
    def fresh(path: Path) -> None:
        path.mkdir(parents=True)


def ensure_urlwatch(venv: Path) -> None:
    """Install urlwatch 2.29 into its own venv (once; reused by later runs)."""
    exe = venv / "bin" / "urlwatch"
    if exe.exists():
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
        if URLWATCH_VERSION in version.stdout:
            return
    print(f"bench: installing urlwatch {URLWATCH_VERSION} into {venv}", file=sys.stderr)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, f"urlwatch=={URLWATCH_VERSION}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: could not install urlwatch:\n{done.stdout}{done.stderr}")


# --- expectations: a cycle that did not do what it claims measures nothing --------------------


def expect(tool: str, cycle: Cycle, n: int, n_changed: int, seen: Counter[str]) -> None:
    if tool == "watcher":
        want = {
            "cold": {"first": n},
            "unchanged": {"unchanged": n},
            "unchanged-304": {"not_modified": n},
            "changed-10%": {"new": n_changed, "unchanged": n - n_changed},
            "large-first": {"first": 1},
            "large-changed": {"new": 1},
        }[cycle.name]
    elif tool == "floor":
        want = {"304": n} if cycle.name == "unchanged-304" else {"200": n}
    else:
        want = {
            "cold": {"NEW": n},
            "unchanged": {"UNCHANGED": n},
            "unchanged-304": {"UNCHANGED": n},
            "changed-10%": {"CHANGED": n_changed, "UNCHANGED": n - n_changed},
            "large-first": {"NEW": 1},
            "large-changed": {"CHANGED": 1},
        }[cycle.name]
    got = {k: v for k, v in seen.items() if v}
    if got != {k: v for k, v in want.items() if v}:
        raise SystemExit(f"bench: {tool} {cycle.name}: expected {want}, got {got}")


# --- the benchmark ----------------------------------------------------------------------------


def run_cycles(
    cycles: list[Cycle],
    corpus: Corpus,
    tools: list[Any],
    work: Path,
    run: int,
    n: int,
    n_changed: int,
    results: dict[str, dict[str, list[Measure]]],
) -> None:
    base: dict[str, Path] = {}
    for step, cycle in enumerate(cycles):
        corpus.set(validators=cycle.validators, changed=cycle.changed, large=cycle.large_version)
        at = T0 + timedelta(hours=6 * step)
        for tool in tools:
            state = work / f"run{run}" / tool.name / cycle.name
            if cycle.first:
                tool.fresh(state)
                base[tool.name] = state
            else:
                shutil.copytree(base[tool.name], state)
            log = work / "logs" / f"run{run}-{cycle.name}-{tool.name}"
            served = corpus.cpu()
            m, seen = tool.run(state, at, log)
            m.server_cpu = corpus.cpu() - served
            expect(tool.name, cycle, n, n_changed, seen)
            results.setdefault(cycle.name, {}).setdefault(tool.name, []).append(m)
            print(
                f"  run {run} {cycle.name:<14} {tool.name:<9} {m.wall:6.2f} s wall "
                f"{m.cpu:6.2f} s cpu {m.rss_mb:6.0f} MB {m.bytes_added / 1e6:8.2f} MB added",
                file=sys.stderr,
                flush=True,
            )
            if not cycle.first:
                shutil.rmtree(state)
    for path in base.values():
        shutil.rmtree(path)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def med(ms: list[Measure], attr: str) -> float:
    return statistics.median(getattr(m, attr) for m in ms)


def table(results: dict[str, dict[str, list[Measure]]], n: int, hosts: int) -> str:
    out = [
        f"N = {n} targets on {hosts} loopback host(s); figures are median (min–max) "
        f"of {max(len(v) for r in results.values() for v in r.values())} run(s).",
        "",
        "| cycle | wall s | CPU s (user+sys) | peak RSS MB | added to snapshots/ | "
        "floor wall s | watcher ÷ floor | urlwatch wall s | watcher ÷ urlwatch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cycle, tools in results.items():
        w = tools["watcher"]
        count = 1 if cycle.startswith("large") else n
        added = [m.bytes_added / count for m in w]
        unit = "B/target" if count > 1 else "B"
        row = [
            cycle,
            spread([m.wall for m in w], ".2f"),
            spread([m.cpu for m in w], ".2f"),
            spread([m.rss_mb for m in w], ".0f"),
            spread(added, ",.0f") + f" {unit}",
        ]
        for peer in ("floor", "urlwatch"):
            if peer in tools:
                row.append(spread([m.wall for m in tools[peer]], ".2f"))
                row.append(f"{med(w, 'wall') / med(tools[peer], 'wall'):.2f}")
            else:
                row += ["—", "—"]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def verdicts(results: dict[str, dict[str, list[Measure]]], n: int) -> list[str]:
    """Each target of issue 7 met or missed, with the figure (only meaningful at N=1000)."""
    lines = []
    for cycle, tools in results.items():
        w, goal = tools["watcher"], TARGETS.get(cycle, {})
        checks: list[tuple[str, bool]] = []
        if "wall" in goal:
            wall = med(w, "wall")
            checks.append((f"wall {wall:.2f} s ≤ {goal['wall']:g} s", wall <= goal["wall"]))
        rss_goal = goal.get("rss_mb", RSS_MB)
        rss = max(m.rss_mb for m in w)
        checks.append((f"peak RSS {rss:.0f} MB ≤ {rss_goal} MB", rss <= rss_goal))
        if "floor_ratio" in goal and "floor" in tools:
            ratio = med(w, "wall") / med(tools["floor"], "wall")
            checks.append(
                (f"{ratio:.2f}× the floor ≤ {goal['floor_ratio']:g}×", ratio <= goal["floor_ratio"])
            )
        if "bytes_per_target" in goal:
            per = med(w, "bytes_added") / n
            checks.append(
                (
                    f"{per:.0f} B/target ≤ {goal['bytes_per_target']} B",
                    per <= goal["bytes_per_target"],
                )
            )
        if goal.get("peer") and "urlwatch" in tools:
            ratio = med(w, "wall") / med(tools["urlwatch"], "wall")
            checks.append((f"{ratio:.2f}× urlwatch < 1×", ratio < 1))
        for text, ok in checks:
            lines.append(f"- {cycle}: {'met' if ok else 'MISSED'}: {text}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="watcher benchmark (issue 7)")
    parser.add_argument("--n", type=int, default=1000, help="targets (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per cycle (default 3)")
    parser.add_argument("--no-peer", action="store_true", help="skip urlwatch")
    parser.add_argument("--no-floor", action="store_true", help="skip the fetch-and-hash floor")
    parser.add_argument("--no-large", action="store_true", help="skip the 5 MB page")
    parser.add_argument("--single-host", action="store_true", help="serve from 127.0.0.1 only")
    parser.add_argument("--out", type=Path, default=BENCH / "out", help="default bench/out")
    args = parser.parse_args()

    if not (VENV_BIN / "watcher").exists():
        raise SystemExit(f"bench: no watcher in {VENV_BIN}; run me with .venv/bin/python")
    out: Path = args.out.resolve()
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    if not args.no_peer:
        ensure_urlwatch(out / "urlwatch-venv")

    info = machine()
    started = time.perf_counter()
    corpus = Corpus(args.n, args.single_host, large=not args.no_large)
    results: dict[str, dict[str, list[Measure]]] = {}
    try:
        print(
            f"bench: {args.n} targets on {len(corpus.hosts)} host(s), port {corpus.port}, "
            f"{args.runs} run(s); {info['cores']} cores, {info['cpu']}, Python {info['python']}",
            file=sys.stderr,
        )
        urls = [(f"t{i:04d}", corpus.url(i)) for i in range(args.n)]
        tools: list[Any] = [Watcher(work, urls)]
        if not args.no_floor:
            tools.append(Floor(work, urls))
        if not args.no_peer:
            tools.append(Urlwatch(work, urls, out / "urlwatch-venv"))
        n_changed = changed_count(args.n)
        large_work = work / "large"
        (large_work / "logs").mkdir(parents=True)
        large_urls = [("large", corpus.large_url)]
        large_tools: list[Any] = [Watcher(large_work, large_urls)]
        if not args.no_floor:
            large_tools.append(Floor(large_work, large_urls))
        for run in range(1, args.runs + 1):
            run_cycles(CYCLES, corpus, tools, work, run, args.n, n_changed, results)
            if not args.no_large:
                run_cycles(LARGE_CYCLES, corpus, large_tools, large_work, run, 1, 1, results)
    finally:
        corpus.close()

    text = table(results, args.n, len(corpus.hosts))
    checks = verdicts(results, args.n) if args.n == 1000 else []
    elapsed = time.perf_counter() - started
    doc = (
        f"Machine: {info['cores']} cores, {info['cpu']}, Python {info['python']}, "
        f"{info['system']}; commit {info['commit']}, {info['date']}; "
        f"bench took {elapsed:.0f} s.\n\n"
        + text
        + ("\n\nTargets (issue 7, N=1000):\n" + "\n".join(checks) if checks else "")
        + "\n"
    )
    (out / "results.md").write_text(doc)
    raw = {
        "machine": info,
        "n": args.n,
        "hosts": len(corpus.hosts),
        "runs": args.runs,
        "results": {
            c: {t: [asdict(m) for m in ms] for t, ms in tools_.items()}
            for c, tools_ in results.items()
        },
    }
    (out / "results.json").write_text(json.dumps(raw, indent=1))
    print(doc)


if __name__ == "__main__":
    main()
