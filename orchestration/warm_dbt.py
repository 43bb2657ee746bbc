"""A dbt process that imports dbt while the sources land, so the cycle's build does not wait for it (D173).

Importing dbt, its DuckDB adapter and their dependencies costs ≈ 2.3 CPU s (≈ 2.8 s wall on two shared cores)
before a build does any work. A cycle spends several seconds landing first, so the landing step starts a warm
process for the run (`start`), which binds a Unix socket, imports dbt and waits. dagster-dbt still launches "dbt"
as a subprocess and reads its JSON log lines from that subprocess's stdout: its executable is a small launcher
(`launcher`, standard library only) that hands its stdout/stderr, arguments, environment and working directory
to the warm process over the socket, relays signals to it, and exits with dbt's exit code. The warm process runs
exactly what the `dbt` console script runs (`dbt.cli.main.cli`) with those, writing straight into dagster-dbt's
pipe, then exits: one build per warm process, so no state carries over from one build to the next.

Whenever no warm process is offered (the variable below is unset, the socket is gone, the process died before
taking the build), the launcher execs the real `dbt`, so a build never depends on this shortcut.

    python -m orchestration.warm_dbt serve SOCKET --watch-pid PID [--idle-seconds N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ichigen.config import PROJECT_ROOT

SOCKET_ENV = "ICHIGEN_WARM_DBT_SOCKET"
IDLE_SECONDS = 900  # a warm process nobody used (its run failed before the build) exits after this
_started: dict[str, subprocess.Popen] = {}


def warm_dir() -> Path:
    """Private folder for the sockets and the launcher (sockets of one user only)."""
    folder = Path(tempfile.gettempdir()) / f"ichigen-warm-dbt-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def socket_path(run_id: str) -> Path:
    return warm_dir() / f"{run_id}.sock"


def start(run_id: str, cwd: Path) -> None:
    """Start this run's warm dbt process (once; a no-op when it already runs). The build may come from this
    process or, under Dagster's multiprocess executor (each step in a child of the run's process), from another
    step's process: the warm process lives as long as the run's process does (or until its idle limit)."""
    if run_id in _started and _started[run_id].poll() is None:
        return
    run_process = os.getppid() if multiprocessing.parent_process() is not None else os.getpid()
    _started[run_id] = subprocess.Popen(
        [sys.executable, "-m", "orchestration.warm_dbt", "serve", str(socket_path(run_id)),
         "--watch-pid", str(run_process)],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))},
    )


def stop(run_id: str) -> None:
    """End this run's warm process if it is still waiting (its build will not come)."""
    _end(run_id, exits_by_itself_within=None)


def _end(run_id: str, exits_by_itself_within: float | None) -> None:
    """End this run's warm process and remove its socket. It is given `exits_by_itself_within` seconds to exit
    (it has served a build), or told to stop at once when None; killed if it is still there after that."""
    process = _started.pop(run_id, None)
    if process is not None and process.poll() is None:
        if exits_by_itself_within is None:
            process.terminate()
        try:
            process.wait(timeout=5 if exits_by_itself_within is None else exits_by_itself_within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    socket_path(run_id).unlink(missing_ok=True)


@contextmanager
def offered(run_id: str) -> Iterator[None]:
    """While inside, dbt subprocesses started from this process go to this run's warm process when there is one.
    Steps of a run execute one at a time in a process, so setting the variable in os.environ (which dagster-dbt
    copies into the subprocess) affects only this build."""
    path = socket_path(run_id)
    if path.exists():
        os.environ[SOCKET_ENV] = str(path)
    try:
        yield
    finally:
        os.environ.pop(SOCKET_ENV, None)
        _end(run_id, exits_by_itself_within=30)


LAUNCHER = '''\
import json, os, signal, socket, sys
REAL_DBT = {real!r}
def cold():
    os.execv(REAL_DBT, [REAL_DBT, *sys.argv[1:]])
path = os.environ.pop({env!r}, None)
if not path:
    cold()
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    conn.connect(path)
    socket.send_fds(conn, [b"fds"], [1, 2])
    conn.sendall(json.dumps({{"args": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}).encode() + b"\\n")
    conn.settimeout(60)  # a warm process still importing answers within seconds
    answers = conn.makefile("rb")
    first = answers.readline()
    if first.startswith(b"pid "):
        conn.sendall(b"go\\n")  # only now does it run dbt: a launcher that gave up above never has two builds
        conn.settimeout(None)
except OSError:
    first = b""
if not first.startswith(b"pid "):
    conn.close()
    cold()  # the warm process never took the build: nothing was started
pid = int(first.split()[1])
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, frame: os.kill(pid, signum))
last = answers.readline()
sys.exit(int(last.split()[1]) if last.startswith(b"exit ") else 2)
'''


def launcher(real_dbt: str) -> str:
    """Write (atomically, when it changed) the launcher that dagster-dbt runs as its dbt executable; its path."""
    text = f"#!{sys.executable} -S\n" + LAUNCHER.format(real=real_dbt, env=SOCKET_ENV)
    # named by its content: checkouts with other virtual environments keep launchers of their own
    path = warm_dir() / f"dbt-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if not path.exists():
        tmp = path.with_name(f".dbt.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    return str(path)


# -- the warm process ------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(path: Path, watch_pid: int, idle_seconds: float = IDLE_SECONDS) -> int:
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # bound before the imports: a build that comes early waits for them, not for a cold dbt
    listener.listen(1)

    import dbt.adapters.duckdb  # noqa: F401 - the imports are the point
    import dbt.cli.main
    import dbt.task.build  # noqa: F401

    listener.settimeout(1.0)
    deadline = time.monotonic() + idle_seconds
    while True:
        if not _alive(watch_pid) or time.monotonic() > deadline:
            path.unlink(missing_ok=True)
            return 0  # the run ended or failed before its build
        try:
            conn, _ = listener.accept()
            break
        except TimeoutError:
            continue
    path.unlink(missing_ok=True)  # one build per warm process: a second launcher goes cold
    listener.close()
    conn.settimeout(30)
    try:
        _, fds, _, _ = socket.recv_fds(conn, 16, 2)
        requests = conn.makefile("rb")
        request = json.loads(requests.readline())
        conn.sendall(f"pid {os.getpid()}\n".encode())
        if requests.readline() != b"go\n":
            return 1  # the launcher gave up and runs dbt itself
    except (OSError, ValueError):
        return 1
    conn.settimeout(None)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)  # dagster-dbt streams dbt's events line by line
    sys.argv = ["dbt", *request["args"]]  # what dbt records as the invocation command
    try:
        dbt.cli.main.cli.main(args=request["args"], prog_name="dbt", standalone_mode=True)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on stderr as the CLI would, and as exit code 2
        import traceback

        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(f"exit {code}\n".encode())
    conn.close()
    os._exit(code)  # dbt may leave non-daemon threads (adapter connections) behind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.warm_dbt")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_args = sub.add_parser("serve", help="import dbt, then run one build handed over by the launcher")
    serve_args.add_argument("socket", type=Path)
    serve_args.add_argument("--watch-pid", type=int, required=True, help="exit when this process (the run's) ends")
    serve_args.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    args = parser.parse_args(argv)
    return serve(args.socket, args.watch_pid, args.idle_seconds)


if __name__ == "__main__":
    sys.exit(main())
