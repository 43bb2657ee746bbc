"""The warm dbt process (D173): the launcher dagster-dbt runs as "dbt" hands the build to a process that imported
dbt beforehand, with the same output, exit code and environment as the real executable — and runs the real
executable whenever no warm process is offered."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from ichigen.config import PROJECT_ROOT
from ichigen.warehouse import DBT_PROJECT_DIR
from orchestration import warm_dbt
from orchestration.definitions import dbt_executable


def run_launcher(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([warm_dbt.launcher(dbt_executable()), *args], env=env, cwd=DBT_PROJECT_DIR,
                          capture_output=True, text=True, timeout=timeout)


def wait_for_socket(run_id: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not warm_dbt.socket_path(run_id).exists():
        assert time.monotonic() < deadline, "the warm process never bound its socket"
        time.sleep(0.05)


def test_the_warm_process_runs_the_build_with_the_callers_environment_and_exit_code(tmp_path):
    run_id = "test-warm-" + os.urandom(4).hex()
    warm_dbt.start(run_id, DBT_PROJECT_DIR)
    wait_for_socket(run_id)
    warm = warm_dbt._started[run_id]
    # `dbt debug --config-dir` prints the profiles folder dbt resolved: the caller's variable must reach dbt
    env = {**os.environ, warm_dbt.SOCKET_ENV: str(warm_dbt.socket_path(run_id)),
           "DBT_PROFILES_DIR": str(tmp_path / "profiles-of-the-caller")}
    answer = run_launcher(["debug", "--config-dir"], env)

    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert str(tmp_path / "profiles-of-the-caller") in answer.stdout  # the caller's environment, not the server's
    warm.wait(timeout=30)  # the warm process took it (a launcher gone cold would leave it waiting) and exited
    assert warm.returncode == 0
    assert not warm_dbt.socket_path(run_id).exists()

    warm_dbt.start(run_id, DBT_PROJECT_DIR)
    wait_for_socket(run_id)
    failed = run_launcher(["no-such-command"], env)
    assert failed.returncode == 2 and "No such command" in failed.stdout + failed.stderr
    warm_dbt._started.pop(run_id).wait(timeout=30)


def test_without_a_warm_process_the_launcher_runs_the_real_dbt(tmp_path):
    env = {**os.environ, warm_dbt.SOCKET_ENV: str(tmp_path / "nobody-listens.sock"),
           "DBT_PROFILES_DIR": str(tmp_path / "cold")}
    answer = run_launcher(["debug", "--config-dir"], env)
    assert answer.returncode == 0 and str(tmp_path / "cold") in answer.stdout

    env.pop(warm_dbt.SOCKET_ENV)
    assert run_launcher(["debug", "--config-dir"], env).returncode == 0


def test_an_unused_warm_process_exits_when_stopped_and_leaves_no_socket():
    run_id = "test-warm-" + os.urandom(4).hex()
    warm_dbt.start(run_id, DBT_PROJECT_DIR)
    wait_for_socket(run_id)
    process = warm_dbt._started[run_id]
    warm_dbt.stop(run_id)
    assert process.poll() is not None
    assert not warm_dbt.socket_path(run_id).exists()


def test_a_warm_process_exits_when_the_run_process_it_watches_ends(tmp_path):
    run_process = subprocess.Popen(["sleep", "60"])
    path = tmp_path / "run.sock"
    warm = subprocess.Popen([sys.executable, "-m", "orchestration.warm_dbt", "serve", str(path),
                             "--watch-pid", str(run_process.pid)], cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert time.monotonic() < deadline and warm.poll() is None, "the warm process never bound its socket"
            time.sleep(0.05)
        run_process.kill()
        run_process.wait(timeout=5)
        assert warm.wait(timeout=30) == 0
        assert not path.exists()
    finally:
        for process in (run_process, warm):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
