"""``flowengine serve`` as a process: refuses bad flows, starts, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import FLOWS
from .test_operations import ENV

SERVE = [sys.executable, "-m", "flowengine", "serve", "--port", "0", "--log-format", "json"]


def _env() -> dict[str, str]:
    return {**os.environ, **ENV, "DAILY_API_URL": "http://127.0.0.1:9/v1"}


def test_serve_refuses_flows_with_errors_and_prints_the_diagnostics(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    (flows / "broken.yaml").write_text("name: broken\nstart: nowhere\nstates: {}\n")
    done = subprocess.run(
        [*SERVE, "--flows", str(flows), "--store", str(tmp_path / "calls.db")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "broken.yaml" in done.stderr
    assert "did not start" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_reports_a_missing_secret_without_a_traceback(tmp_path: Path) -> None:
    env = {**_env(), "DAILY_API_KEY": ""}
    done = subprocess.run(
        [*SERVE, "--flows", str(FLOWS), "--store", str(tmp_path / "calls.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DAILY_API_KEY: is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_starts_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*SERVE, "--flows", str(FLOWS), "--store", str(tmp_path / "calls.db")],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        _run_until_sigterm(process)


def _run_until_sigterm(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and not ready:
            line = process.stdout.readline()
            if not line:
                break
            ready = json.loads(line).get("event") == "daemon ready"
        assert ready, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        rest = process.stdout.read()
        assert any(json.loads(line)["event"] == "daemon stopped" for line in rest.splitlines())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_line_defaults_are_the_settings_defaults() -> None:
    from flowengine.daemon import settings as s
    from flowengine.daemon.serve import serve

    defaults = {p.name: p.default for p in serve.params}
    assert defaults["lease_ttl"] == s.DEFAULT_LEASE_TTL
    assert defaults["keep_ended"] == s.DEFAULT_KEEP_ENDED
