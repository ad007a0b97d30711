from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.server import PageServer

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def server() -> Iterator[PageServer]:
    with PageServer() as s:
        yield s


@dataclass
class Watcher:
    """Runs the real ``watcher`` CLI against a config in a temp dir."""

    path: Path
    data_dir: Path

    def write(
        self, targets: str, settings: str = "", notify: str = "", timeout: str = "2s"
    ) -> None:
        base = (
            f"settings:\n  timeout: {timeout}\n  retries: 0\n"
            f"  per_host: {{concurrency: 2, delay: 0s}}\n{settings}"
        )
        self.path.write_text(f"{base}{notify}targets:\n{targets}")

    def run(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main_command(),
            [args[0], "--config", str(self.path), *args[1:]],
            catch_exceptions=False,
        )

    def check(self, *args: str, at: str | None = None) -> tuple[int, dict[str, Any]]:
        extra = ["--at", at] if at else []
        result = self.run("check", "--json", *extra, *args)
        return result.exit_code, json.loads(result.stdout)


def main_command() -> Any:
    from watcher.cli import main

    return main


@pytest.fixture
def watcher(tmp_path: Path) -> Watcher:
    return Watcher(tmp_path / "targets.yaml", tmp_path / "snapshots")
