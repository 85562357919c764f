"""One writer per workdir (`actionclip_jax.workdir_lock`).

The local lock is tested with real processes: a holder in a subprocess, the contender here (and,
once, `python -m actionclip_jax.main`). The gs:// lock runs against a fake google-cloud-storage
client that keeps objects and generations in memory as GCS does (a write with
`if_generation_match` that does not match fails; 0 means "only if absent").
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import train_helpers as h

from actionclip_jax import evaluate, plan, train, workdir_lock


_HOLDER = r"""
import sys, time
from actionclip_jax import workdir_lock
with workdir_lock.hold(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _start_holder(workdir):
    """A process that holds the lock of `workdir` until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workdir)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(h.REPO)},
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_second_holder_is_refused_naming_the_first_and_takes_over_once_it_is_killed(
    tmp_path, caplog
):
    workdir = tmp_path / "run"
    holder = _start_holder(workdir)
    try:
        with pytest.raises(workdir_lock.WorkdirLockedError) as err:
            with workdir_lock.hold(workdir):
                pass
        message = str(err.value)
        assert "\n" not in message
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "started 20" in message and str(workdir / workdir_lock.LOCK_NAME) in message
        assert "another --workdir" in message
    finally:
        _kill(holder)  # kill -9: the lock file stays, with the dead holder's name in it
    assert json.loads((workdir / workdir_lock.LOCK_NAME).read_text())["pid"] == holder.pid
    with caplog.at_level(logging.WARNING):
        with workdir_lock.hold(workdir):
            info = json.loads((workdir / workdir_lock.LOCK_NAME).read_text())
            assert info["pid"] == os.getpid()
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "no longer running" in warning and f"pid {holder.pid}" in warning
    # Released cleanly: the next holder takes it without a warning.
    assert not (workdir / workdir_lock.LOCK_NAME).exists()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        with workdir_lock.hold(workdir):
            pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_refused_or_failed_start_leaves_no_workdir_behind(tmp_path):
    workdir = tmp_path / "new_run"
    with pytest.raises(RuntimeError, match="boom"):
        with workdir_lock.hold(workdir):
            assert workdir.is_dir()
            raise RuntimeError("boom")
    assert not workdir.exists()
    # A workdir the run wrote into stays, without the lock file.
    with workdir_lock.hold(workdir):
        (workdir / "eval_results.json").write_text("{}")
    assert sorted(p.name for p in workdir.iterdir()) == ["eval_results.json"]


def test_train_and_eval_refuse_a_locked_workdir_before_reading_it(basetemp, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the run read the workdir of another run")

    monkeypatch.setattr(plan, "make_plan", must_not_run)
    config = h.make_test_config(basetemp)
    workdir = tmp_path / "busy"
    holder = _start_holder(workdir)
    try:
        for run in (train.train_and_evaluate, evaluate.evaluate):
            with pytest.raises(workdir_lock.WorkdirLockedError, match=f"pid {holder.pid}"):
                run(config, workdir)
    finally:
        _kill(holder)


@pytest.mark.slow
def test_main_refuses_a_locked_workdir_with_one_line(basetemp, tmp_path):
    workdir = tmp_path / "busy"
    holder = _start_holder(workdir)
    try:
        proc = subprocess.run(
            h.command(workdir),
            cwd=h.REPO,
            env=h.run_env(basetemp),
            capture_output=True,
            text=True,
            timeout=h.RUN_TIMEOUT,
        )
    finally:
        _kill(holder)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("actionclip_jax: error: --workdir"), proc.stderr[-3000:]
    assert f"pid {holder.pid}" in last and "in use by another run" in last
    assert not (workdir / "checkpoints").exists()


# ------------------------------------------------------------------------------------ gs://


class _PreconditionFailed(Exception):
    pass


class _NotFound(Exception):
    pass


class _FakeStore:
    """Objects of a fake bucket: name -> (text, generation)."""

    def __init__(self):
        self.objects = {}
        self.generations = 0

    def put(self, name, text, if_generation_match=None):
        current = self.objects.get(name, (None, 0))[1]
        if if_generation_match is not None and if_generation_match != current:
            raise _PreconditionFailed(name)
        self.generations += 1
        self.objects[name] = (text, self.generations)
        return self.generations


class _FakeBlob:
    def __init__(self, store, name):
        self.store, self.name, self.generation = store, name, None

    def upload_from_string(self, text, content_type=None, if_generation_match=None):
        del content_type
        self.generation = self.store.put(self.name, text, if_generation_match)

    def reload(self):
        if self.name not in self.store.objects:
            raise _NotFound(self.name)
        self.generation = self.store.objects[self.name][1]

    def download_as_text(self, if_generation_match=None):
        if self.name not in self.store.objects:
            raise _NotFound(self.name)
        text, generation = self.store.objects[self.name]
        if if_generation_match is not None and if_generation_match != generation:
            raise _PreconditionFailed(self.name)
        return text

    def delete(self, if_generation_match=None):
        if self.name not in self.store.objects:
            raise _NotFound(self.name)
        if if_generation_match is not None and if_generation_match != self.store.objects[
            self.name
        ][1]:
            raise _PreconditionFailed(self.name)
        del self.store.objects[self.name]


class _FakeClient:
    def __init__(self, store):
        self.store = store
        self.buckets = []

    def bucket(self, name):
        self.buckets.append(name)
        client = self

        class _Bucket:
            def blob(self, path):
                return _FakeBlob(client.store, path)

        return _Bucket()


@pytest.fixture
def gcs(monkeypatch):
    store = _FakeStore()
    client = _FakeClient(store)
    monkeypatch.setattr(workdir_lock, "_gcs", lambda: (client, _PreconditionFailed, _NotFound))
    return store, client


GS_WORKDIR = "gs://bucket/runs/a"
LOCK_OBJECT = "runs/a/run.lock"


def _lock_info(store):
    return json.loads(store.objects[LOCK_OBJECT][0])


def test_gcs_lock_is_created_only_if_absent_refreshed_and_deleted_on_release(gcs):
    store, client = gcs
    with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=0.05, stale_secs=60) as lock:
        assert client.buckets == ["bucket"]
        info = _lock_info(store)
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        first = (store.objects[LOCK_OBJECT][1], info["heartbeat"])
        with pytest.raises(workdir_lock.WorkdirLockedError) as err:
            with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=0.05, stale_secs=60):
                pass
        assert f"pid {os.getpid()}" in str(err.value) and "gs://bucket/runs/a/run.lock" in str(
            err.value
        )
        deadline = time.time() + 30
        while store.objects[LOCK_OBJECT][1] == first[0] and time.time() < deadline:
            time.sleep(0.05)
        # The holder rewrote the object (a new generation) with a newer heartbeat.
        assert store.objects[LOCK_OBJECT][1] > first[0]
        assert _lock_info(store)["heartbeat"] > first[1]
        lock.check()
    assert LOCK_OBJECT not in store.objects


def test_gcs_lock_with_a_stale_heartbeat_is_taken_over_with_a_warning(gcs, caplog):
    store, _ = gcs
    dead = {"host": "tpu-vm-7", "pid": 4242, "started": "2026-01-01T00:00:00+00:00",
            "heartbeat": time.time() - 3600}  # fmt: skip
    store.put(LOCK_OBJECT, json.dumps(dead), if_generation_match=0)
    with caplog.at_level(logging.WARNING):
        with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=60, stale_secs=300):
            assert _lock_info(store)["pid"] == os.getpid()
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "no longer running" in warning and "host tpu-vm-7, pid 4242" in warning
    # A fresh heartbeat is respected.
    alive = {**dead, "heartbeat": time.time()}
    store.put(LOCK_OBJECT, json.dumps(alive), if_generation_match=None)
    with pytest.raises(workdir_lock.WorkdirLockedError, match="host tpu-vm-7, pid 4242"):
        with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=60, stale_secs=300):
            pass


def test_gcs_lock_of_a_dead_process_of_this_host_is_taken_over_at_once(gcs, caplog):
    store, _ = gcs
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    info = {"host": socket.gethostname(), "pid": gone.pid, "started": "earlier",
            "heartbeat": time.time()}  # fmt: skip
    store.put(LOCK_OBJECT, json.dumps(info), if_generation_match=0)
    with caplog.at_level(logging.WARNING):
        with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=60, stale_secs=300):
            assert _lock_info(store)["pid"] == os.getpid()
    assert any(f"pid {gone.pid}" in r.getMessage() for r in caplog.records)


def test_gcs_holder_that_lost_its_lock_is_told_at_the_next_check(gcs):
    store, _ = gcs
    with workdir_lock.hold(GS_WORKDIR, heartbeat_secs=0.05, stale_secs=60) as lock:
        # Another run decided this one was dead and took the object over.
        store.put(LOCK_OBJECT, json.dumps({"host": "other", "pid": 1, "heartbeat": time.time()}))
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                lock.check()
            except workdir_lock.WorkdirLockedError as err:
                assert "taken over by another run" in str(err)
                break
            time.sleep(0.05)
        else:
            pytest.fail("the lost lock was never reported")
    assert _lock_info(store)["host"] == "other"  # the new holder's object is left alone
