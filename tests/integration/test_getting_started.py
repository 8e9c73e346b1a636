"""docs/getting-started.md, followed literally in an empty folder.

The page includes its files from docs/examples/quickstart/; this test copies them into a
new folder and runs the page's shell lines of sections 5 and 6 with bash, as a reader
would (``&`` lines in the background): the embedded broker, ``protean check``, ``protean
db setup``, a real ``celery worker`` and ``celery beat``, one ``AddBook`` command. It then
waits until ``python shelf.py`` and ``protean status`` print what the page shows.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.orders import ROOT

pytestmark = pytest.mark.integration

PAGE = ROOT / "docs" / "getting-started.md"
QUICKSTART = ROOT / "docs" / "examples" / "quickstart"
COMMAND = re.compile(r"^(python|celery|export|PROTEAN_DOMAIN=\S+ PROTEAN_CELERY_TRAVERSE=0 celery) ")


def section(heading: str) -> str:
    """The text of the page's section whose ``## `` heading starts with ``heading``."""
    for part in PAGE.read_text().split("\n## "):
        if part.split("\n", 1)[0].startswith(heading):
            return part
    raise AssertionError(f"no section {heading!r} in {PAGE}")


def plain_blocks(text: str) -> list[list[str]]:
    """The fenced blocks without a language (shell lines and the output they print)."""
    blocks: list[tuple[str, list[str]]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            if inside:
                blocks.append((line.removeprefix("```"), []))
        elif inside:
            blocks[-1][1].append(line)
    return [lines for language, lines in blocks if not language]


def commands(text: str) -> list[str]:
    return [line for block in plain_blocks(text) if all(COMMAND.match(x) for x in block) for line in block]


def expected_output(text: str, first_word: str) -> str:
    (block,) = [b for b in plain_blocks(text) if b[0].startswith(first_word)]
    return "\n".join(block)


def wait_for(read: Callable[[], str], expected: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := read()) != expected:
        assert time.monotonic() < deadline, f"expected within {timeout}s:\n{expected}\nlast seen:\n{seen}"
        time.sleep(0.2)


class Reader:
    """A folder with the quickstart's files and a shell environment that follows ``export`` lines."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        venv_bin = str(Path(sys.executable).parent)
        hidden = {"CELERY_BROKER_URL", "PROTEAN_ENV", "PROTEAN_CELERY_STATE", "PYTHONPATH", "PROTEAN_DOMAIN"}
        self.env = {k: v for k, v in os.environ.items() if k not in hidden}
        self.env.update(PATH=f"{venv_bin}:{os.environ['PATH']}", PWD=str(folder))
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, line: str) -> str:
        """One line of the page: exported, started in the background, or run to completion."""
        if line.startswith("export "):
            name, value = line.removeprefix("export ").split("=", 1)
            self.env[name] = value.replace("$PWD", str(self.folder))
            return ""
        if line.endswith("&"):
            log = (self.folder / f"background-{len(self.background)}.log").open("wb")
            self.background.append(subprocess.Popen(["bash", "-c", f"exec {line.rstrip('& ')}"], cwd=self.folder,
                                                    env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True))
            return ""
        result = subprocess.run(["bash", "-c", line], cwd=self.folder, env=self.env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, f"{line} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        return result.stdout.strip()

    def stop(self) -> None:
        """SIGTERM to each background main process (as `kill %1 …`), SIGKILL to a group that hangs."""
        for process in reversed(self.background):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("background-*.log")))


@pytest.fixture
def reader() -> Iterator[Reader]:
    folder = Path(tempfile.mkdtemp(prefix="quickstart-"))  # short: the broker's unix socket lives in it
    for path in QUICKSTART.iterdir():
        shutil.copy(path, folder / path.name)
    reader = Reader(folder)
    yield reader
    reader.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_the_page_shows_every_quickstart_file():
    page = PAGE.read_text()
    for path in QUICKSTART.iterdir():
        assert f'--8<-- "docs/examples/quickstart/{path.name}"' in page, path.name


def test_getting_started_from_zero_handles_the_command_as_the_page_shows(reader):
    setup, use = commands(section("5.")), commands(section("6."))
    assert setup[0] == "python broker.py &" and "celery -A app worker -c 2 --loglevel=INFO &" in setup
    assert use[:2] == ["python add_book.py b1 Dune", "python shelf.py"]
    assert use[2:] == ["celery -A app protean status", "celery -A app protean dlq list"]

    reader.run(setup[0])
    socket = reader.folder / ".state" / "redis" / "redis.sock"
    wait_for(lambda: "ready" if socket.exists() else reader.logs(), "ready", timeout=20)
    outputs = {line: reader.run(line) for line in setup[1:]}
    expected = "OK: 2 handler tasks, broker and databases reachable, guarantees in force."
    assert outputs["celery -A app protean check"] == expected

    try:
        assert reader.run(use[0]) == "AddBook b1 sent"
        wait_for(lambda: reader.run(use[1]), expected_output(section("6."), "b1 "))
        wait_for(lambda: reader.run(use[2]), expected_output(section("6."), "unrelayed"))
        assert reader.run(use[3]) == "0 dead letter(s)."
        auto_check = commands(section("Without an app module"))[0]
        assert auto_check.endswith("celery -A protean_celery.auto protean check")
        assert reader.run(auto_check) == "OK: 2 handler tasks, broker and databases reachable, guarantees in force."
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- background logs ---\n{reader.logs()}") from None
