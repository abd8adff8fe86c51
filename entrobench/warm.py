"""Warm starts for local runs: import torch, transformers and lm-eval once per run, not per job.

Snakemake starts a process per job, and each one imported torch (and transformers and lm-eval
for decoding) before its first step: a smoke PINN cell took 11.2 s cold and 5.1 s warm, a decoding
cell 35 s and 28-29 s. For a local run the Snakefile starts one server that imports what the families
list (`Family.warm_imports`), then forks a child per job:

    python -m entrobench.warm serve SOCKET --watch PID      # the Snakefile's onstart does this
    ENTROBENCH_WARM=SOCKET python -m entrobench run-cell ... # a job: __main__.py hands it over

The child is the job. It gets the client's arguments, working directory, environment, stdin,
stdout and stderr (passed over the socket), and the client exits with its status. Signals the
client gets (SIGTERM from Snakemake, SIGINT from a terminal) are passed on to the child, so a
cell's checkpoint on SIGTERM works as in a cold start. A client that dies takes its child with it
(SIGTERM). The server exits with the run that started it (the watched PID).

Where no server answers, the client runs the job itself (a cold start) and says so on stderr. So
do jobs with more than one thread: the server imports numpy and torch with one BLAS and OpenMP
thread (a process that has run a parallel region must not fork), which is what local jobs ask for.
On SLURM each job is a cold start on its node.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

ENV = "ENTROBENCH_WARM"
_LENGTH = struct.Struct("!Q")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_others: set[int] = set()  # the server's descriptors of other jobs, which a child closes


# --- client: a job's process ---------------------------------------------------------------------

def run_job(args: list[str]) -> int | None:
    """Run `python -m entrobench ARGS` in the warm server; None when it cannot (cold start)."""
    path = os.environ.get(ENV)
    if not path or path == "off" or any(os.environ.get(v, "1") != "1" for v in _THREAD_VARS):
        return None
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        request = json.dumps({"argv": [sys.argv[0], *args], "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(sock, [_LENGTH.pack(len(request))], [0, 1, 2])
        sock.sendall(request)
        replies = sock.makefile("r")
        pid = json.loads(replies.readline())["pid"]
    except (OSError, ValueError, KeyError) as err:
        print(f"warm start unavailable ({path}: {err}); cold start", file=sys.stderr)
        return None
    for sig in _FORWARDED:
        signal.signal(sig, lambda number, _frame: _signal(pid, number))
    line = replies.readline()
    if not line:  # the server died under it
        _signal(pid, signal.SIGTERM)
        print(f"warm server {path} went away while job {pid} ran", file=sys.stderr)
        return 1
    code = json.loads(line)["exit"]
    if code < 0:  # killed by a signal: die of the same one, as a cold start would
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    return code


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:  # the job has just ended: its status is on its way
        pass


# --- server --------------------------------------------------------------------------------------

def serve(path: str, watch_pid: int) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)  # clients queue here while the imports below run
    listener.listen(64)
    for name in _THREAD_VARS:
        os.environ[name] = "1"
    _preload()
    print(f"warm server ready: {path} ({os.getpid()})", file=sys.stderr, flush=True)
    while _alive(watch_pid):
        ready, _, _ = select.select([listener], [], [], 2.0)
        if not ready:
            continue
        conn, _ = listener.accept()
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as err:
            print(f"warm server: bad request ({err})", file=sys.stderr, flush=True)
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            _become_job(request, fds, conn)
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _wait_in_thread(conn, pid)
    listener.close()


def _preload() -> None:
    import importlib

    from entrobench import family

    family.activate_plugins()
    # the engine's own: cells (torch; _dynamo, which every optimizer's first param group imports),
    # the MLflow import of records (mlflow: 3 s) and the plots
    modules = ["entrobench.cli", "numpy", "torch", "torch._dynamo", "entrobench.tracking", "mlflow.tracking", "entrobench.plots"]
    for name in family.names():
        modules += family.load(name).warm_imports
    start = time.time()
    for module in dict.fromkeys(modules):
        try:
            importlib.import_module(module)
        except Exception as err:  # noqa: BLE001 (a job that needs it will say why, cold)
            print(f"warm server: not preloaded {module}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
    print(f"warm server: {len(modules)} modules in {time.time() - start:.1f}s", file=sys.stderr, flush=True)


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _, _ = socket.recv_fds(conn, _LENGTH.size, 3)
    if len(head) != _LENGTH.size or len(fds) != 3:
        raise ValueError("expected a length and 3 file descriptors")
    (length,) = _LENGTH.unpack(head)
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    return json.loads(body), fds


def _become_job(request: dict, fds: list[int], conn: socket.socket) -> None:
    """In the forked child: take the client's place, run its command, never return."""
    code = 1
    try:
        conn.close()
        for fd in _others:
            os.close(fd)
        os.setpgid(0, 0)  # not in the server's group: a signal to one is not a signal to the other
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in _FORWARDED:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = request["argv"]
        from entrobench.cli import main

        code = main(sys.argv[1:])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 (the job's traceback goes to the job's stderr)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)


def _wait_in_thread(conn: socket.socket, pid: int) -> None:
    import threading

    pidfd = os.pidfd_open(pid)
    _others.update((conn.fileno(), pidfd))

    def wait() -> None:
        while True:
            ready, _, _ = select.select([pidfd, conn], [], [])
            if pidfd in ready:
                break
            if not conn.recv(1):  # the client is gone (killed): its job must not run on alone
                os.kill(pid, signal.SIGTERM)
                select.select([pidfd], [], [])
                break
        _, status = os.waitpid(pid, 0)
        _others.difference_update((conn.fileno(), pidfd))
        os.close(pidfd)
        try:
            conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        except OSError:
            pass
        conn.close()

    threading.Thread(target=wait, daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# --- the run's side: start and stop (the Snakefile's hooks) --------------------------------------

def start(log_path: str) -> tuple[str, subprocess.Popen]:
    """Start a server watching this process; returns its socket path (for $ENTROBENCH_WARM)."""
    import tempfile

    # mkdtemp's folder is the user's alone (0700): nobody else can ask the server to run a command
    path = os.path.join(tempfile.mkdtemp(prefix="entrobench-warm-"), "socket")
    with open(log_path, "a") as log:
        server = subprocess.Popen([sys.executable, "-m", "entrobench.warm", "serve", path, "--watch", str(os.getpid())],
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    for _ in range(100):  # the socket exists within a second (before the imports)
        if os.path.exists(path) or server.poll() is not None:
            break
        time.sleep(0.05)
    return path, server


def stop(path: str, server) -> None:
    if os.environ.get(ENV) == path:
        del os.environ[ENV]
    server.terminate()
    try:
        server.wait(timeout=10)
    except Exception:  # noqa: BLE001
        server.kill()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m entrobench.warm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="fork a child per job until the watched process ends")
    p.add_argument("socket")
    p.add_argument("--watch", type=int, required=True, help="exit when this process is gone")
    args = parser.parse_args()
    serve(args.socket, args.watch)
