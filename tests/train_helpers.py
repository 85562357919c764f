"""Shared machinery of the training tests: runs of `actionclip_jax.main` in subprocesses.

Every run of a session uses one synthetic data folder (generated once, by the first run) and one
persistent JAX compilation cache, which the pytest process uses too. Subprocesses inherit the
pytest process's `XLA_FLAGS` (8 simulated CPU devices, see conftest.py) unless a test asks for
another device count, so a program compiled once, in any of them, is loaded by all the others:
compiling the train step dominates a run of the test config on a CPU. Programs of any compile
time are cached: orbax's first save of a run compiles one small slicing program per array shape
and device (about 170 for the test model), which costs tens of seconds per run uncached.
"""

import contextlib
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

REPO = Path(__file__).resolve().parents[1]
RUN_MAIN = Path(__file__).resolve().parent / "run_main.py"
TMP_SUFFIX = ".orbax-checkpoint-tmp"
# The test config (2 epochs x 3 steps of 8 videos, checkpoints every 2 steps), stopped after its
# first epoch: step 2 is a mid-epoch checkpoint, step 3 the epoch end with an evaluation.
TEST_CONFIG = ("--config=configs/test.py",)
RUN_TIMEOUT = 900  # s, one subprocess run (a cold compile on a busy 2-core machine takes minutes)


@functools.cache
def session_dirs(basetemp) -> dict:
    """`data` (ACTIONCLIP_JAX_DATA) and `jax_cache` folders shared by the whole session."""
    base = Path(basetemp) / "actionclip_train_session"
    dirs = {"data": base / "data", "jax_cache": base / "jax_cache", "runs": base / "runs"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def synthetic_root(basetemp) -> str:
    """The test config's data folder, as `plan.resolve_data` names it under ACTIONCLIP_JAX_DATA."""
    return str(session_dirs(basetemp)["data"] / "1_1_1_64")


@contextlib.contextmanager
def compile_cache(basetemp):
    """Points this process's persistent compilation cache at the session's, then back."""
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    previous = {n: getattr(jax.config, n) for n in names}
    jax.config.update(names[0], str(session_dirs(basetemp)["jax_cache"]))
    jax.config.update(names[1], 0.0)
    jax.config.update(names[2], 0)
    try:
        yield
    finally:
        for n, v in previous.items():
            jax.config.update(n, v)
        _reset_cache()


def _reset_cache():
    # The cache object outlives the setting; only this (jax's own tests use it) drops it.
    with contextlib.suppress(ImportError, AttributeError):
        from jax._src import compilation_cache  # pylint: disable=import-outside-toplevel

        compilation_cache.reset_cache()


def make_test_config(basetemp, **overrides):
    """configs/test.py with the session's data folder, resolved (data generated if absent)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # configs/*.py import `configs.<name>`
    from actionclip_jax import plan  # pylint: disable=import-outside-toplevel
    from configs import test as test_config_module  # pylint: disable=import-outside-toplevel

    config = test_config_module.get_config()
    config.data.synthetic.root = synthetic_root(basetemp)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split("__")
        node = config
        for name in parents:
            node = node[name]
        node[leaf] = value
    return plan.resolve_data(config)


def run_env(basetemp, devices: int | None = None) -> dict:
    env = dict(os.environ)
    dirs = session_dirs(basetemp)
    env.update(
        ACTIONCLIP_JAX_DATA=str(dirs["data"]),
        JAX_COMPILATION_CACHE_DIR=str(dirs["jax_cache"]),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def command(workdir, *overrides, record: str | None = None, extra=()) -> list[str]:
    cmd = [sys.executable, str(RUN_MAIN), *TEST_CONFIG, f"--workdir={workdir}", *overrides]
    if record:
        cmd.append(f"--record={record}")
    return cmd + list(extra)


def start(basetemp, workdir, *overrides, log, devices=None, record=None, extra=()):
    """Starts a run in its own process group (so its grain workers can be reaped with it)."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - closed by `finish`
    proc = subprocess.Popen(
        command(workdir, *overrides, record=record, extra=extra),
        cwd=REPO,
        env=run_env(basetemp, devices),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_file = out
    return proc


def reap(proc):
    """Kills what is left of a run's process group (orphaned grain workers) and closes its log."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.log_file.close()


def finish(proc, timeout=RUN_TIMEOUT) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        reap(proc)


def run(basetemp, workdir, *overrides, log=None, devices=None, record=None, check=True):
    """One complete run; returns its log text. `check`: fail (showing the log) unless rc == 0."""
    log = Path(log or Path(workdir).with_suffix(".log"))
    proc = start(basetemp, workdir, *overrides, log=log, devices=devices, record=record)
    rc = finish(proc)
    text = log.read_text(errors="replace")
    if check and rc != 0:
        raise AssertionError(f"run in {workdir} exited with {rc}:\n{text[-6000:]}")
    return text


def complete_steps(workdir) -> list[int]:
    d = Path(workdir) / "checkpoints"
    if not d.exists():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())


def tmp_checkpoints(workdir) -> list[str]:
    d = Path(workdir) / "checkpoints"
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if TMP_SUFFIX in p.name)


def group_members(pgid) -> list[int]:
    """Live processes of a process group (a run and its grain workers), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def cmdline(pid) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def kill_when(proc, condition, poll=0.002, timeout=RUN_TIMEOUT) -> bool:
    """SIGKILLs the run's main process as soon as `condition()` holds; False if it ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    raise TimeoutError("the run neither ended nor reached the kill point")


def load_state(workdir, step) -> dict:
    """A run's checkpoint as numpy arrays, on any device layout: `params` beside the `state`
    item's step, optimiser state and key."""
    return {**load_item(workdir, step, "state"), "params": load_item(workdir, step, "params")}


def load_params(workdir, step) -> dict:
    """The `params` item of a run's checkpoint as numpy arrays."""
    return load_item(workdir, step, "params")


def load_item(workdir, step, item) -> dict:
    """One item of a run's checkpoint as numpy arrays, on any device layout."""
    path = Path(workdir).resolve() / "checkpoints" / str(step) / item
    ckptr = ocp.PyTreeCheckpointer()
    tree = ckptr.metadata(path).item_metadata.tree
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    return ckptr.restore(path, restore_args=args)


def records(path) -> list[list[int]]:
    """The dataset indices of each training batch a run fed (see run_main.py's --record)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line)["index"] for line in p.read_text().splitlines() if line]


def eval_results(workdir, name="eval_results.json") -> dict:
    return json.loads((Path(workdir) / name).read_text())


def free_port() -> int:
    """A port that is free now and that the system does not hand out by itself.

    Binding port 0 would give an ephemeral port, which the kernel may hand to any other socket
    (an outgoing connection, another test's port 0) before the coordinator binds it. A random
    port below the ephemeral range is only ever taken by a program that asks for it by number.
    """
    low = 32768  # Linux's default start of the ephemeral range
    with contextlib.suppress(OSError, ValueError, IndexError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    picker = random.SystemRandom()  # concurrent test sessions pick different ports
    for _ in range(200):
        port = picker.randrange(max(1024, low // 2), low)
        with socket.socket() as s:
            try:
                s.bind(("localhost", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port found between {max(1024, low // 2)} and {low}")


# The uninterrupted reference run: the test config's first epoch (3 steps), one grain worker.
REFERENCE_OVERRIDES = ("--config.max_steps=3", "--config.data.workers=1")


@functools.cache
def reference_run(basetemp) -> Path:
    """Runs the reference once per session; returns its workdir (checkpoints 2 and 3)."""
    workdir = session_dirs(basetemp)["runs"] / "reference"
    run(basetemp, workdir, *REFERENCE_OVERRIDES, record=str(workdir) + ".batches.jsonl")
    return workdir
