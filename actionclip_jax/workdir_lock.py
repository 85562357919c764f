"""One writer per workdir: a run holds an exclusive lock on its `--workdir` while it runs.

Two runs writing one workdir (a second `main` started by mistake, an evaluation started while
training runs) would overwrite each other's checkpoints and results with no error. Training and
evaluation-only runs therefore take `WORKDIR/run.lock` before they read the workdir:

* on a local (or NFS) disk, an `fcntl.flock` on the lock file, which the operating system drops
  when the holding process dies (also on kill -9): a lock file whose flock is free was left by a
  run that is gone, and is taken over with a warning;
* on `gs://`, a lock object created only if absent (a generation precondition), which the holder
  rewrites every `heartbeat_secs` (its `heartbeat` field); an object not rewritten for
  `stale_secs`, or written by a process of this host that no longer exists, was left by a run
  that is gone, and is taken over, again only if nobody rewrote it meanwhile (a precondition on
  its generation), with a warning.

The lock file holds the holder's host, pid and start time, so that a run that refuses names them.
On a multi-host job process 0 holds the lock and tells the others whether it got it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import threading
import time

import jax
import numpy as np
from absl import logging

LOCK_NAME = "run.lock"
# gs:// only (a local lock dies with its process): how often the holder proves it is alive, and
# how long without a sign of life before the lock counts as left behind. Ten missed heartbeats
# leave room for a slow bucket and for clock differences between hosts.
HEARTBEAT_SECS = 30.0
STALE_SECS = 300.0


class WorkdirLockedError(RuntimeError):
    """Another run holds the workdir; the message names it and what to do."""


def _holder_info() -> dict:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds"),
        "heartbeat": now,
    }


def _describe(info: dict) -> str:
    return (
        f"host {info.get('host', '?')}, pid {info.get('pid', '?')}, started "
        f"{info.get('started', '?')}"
    )


def _parse(text: str) -> dict:
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _refusal(workdir, path, info: dict) -> WorkdirLockedError:
    pid, host = info.get("pid", "PID"), info.get("host", "its host")
    return WorkdirLockedError(
        f"--workdir {workdir} is in use by another run ({_describe(info)}; lock {path}): wait "
        f"for it to finish or stop it (kill {pid} on {host}), or give this run another --workdir"
    )


class _LocalLock:
    """`fcntl.flock` on `WORKDIR/run.lock`: the kernel releases it when the process dies."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_NAME)
        self._fd = None
        self._made_workdir = False

    def acquire(self):
        while True:
            if not os.path.isdir(self.workdir):  # (again: a holder's release may remove it)
                os.makedirs(self.workdir, exist_ok=True)
                self._made_workdir = True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                info = _parse(_read_fd(fd))
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                self._cleanup_workdir()
                raise _refusal(self.workdir, self.path, info) from None
            # A holder that released between our open and flock unlinked the file we locked:
            # lock the file that is now at the path instead.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        left = _parse(_read_fd(fd))
        if left:
            logging.warning(
                "taking over the lock %s of a run that is no longer running (%s)",
                self.path,
                _describe(left),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder_info()).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def check(self):
        """A local lock cannot be lost while the process lives."""

    def release(self):
        if self._fd is None:
            return
        # Unlinked while still locked: an empty or absent file means "released cleanly".
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        self._cleanup_workdir()

    def _cleanup_workdir(self):
        # A run that stopped before writing anything leaves no empty workdir behind.
        if self._made_workdir:
            with contextlib.suppress(OSError):
                os.rmdir(self.workdir)


def _read_fd(fd) -> str:
    try:
        return os.pread(fd, 1 << 16, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def _gcs():
    """`(client, PreconditionFailed, NotFound)` of google-cloud-storage."""
    # pylint: disable=import-outside-toplevel
    try:
        from google.api_core import exceptions
        from google.cloud import storage
    except ImportError as err:
        raise ImportError(
            "a gs:// --workdir needs google-cloud-storage: pip install google-cloud-storage"
        ) from err
    return storage.Client(), exceptions.PreconditionFailed, exceptions.NotFound


def _gone_from_this_host(info: dict) -> bool:
    """Whether the holder ran on this machine and its process is gone (a VM restarted after a
    preemption keeps its name: its new run need not wait for the heartbeat to go stale)."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    if info["pid"] == os.getpid():
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


class _GcsLock:
    """A lock object created only if absent, kept alive by a heartbeat thread."""

    def __init__(self, workdir: str, heartbeat_secs: float, stale_secs: float):
        self.workdir = workdir
        self.path = f"{workdir.rstrip('/')}/{LOCK_NAME}"
        bucket, _, name = self.path[len("gs://") :].partition("/")
        client, self._precondition_failed, self._not_found = _gcs()
        self._blob = client.bucket(bucket).blob(name)
        self.heartbeat_secs, self.stale_secs = heartbeat_secs, stale_secs
        self._info = _holder_info()
        self._generation = None
        self._lost = None
        self._stop = threading.Event()
        self._thread = None

    def _write(self, if_generation_match: int) -> int:
        self._info["heartbeat"] = time.time()
        self._blob.upload_from_string(
            json.dumps(self._info), content_type="application/json",
            if_generation_match=if_generation_match,
        )  # fmt: skip
        return self._blob.generation

    def acquire(self):
        try:
            self._generation = self._write(if_generation_match=0)  # 0: only if absent
        except self._precondition_failed:
            self._take_over_if_stale()
        self._thread = threading.Thread(target=self._beat, name="workdir_lock", daemon=True)
        self._thread.start()

    def _take_over_if_stale(self):
        try:
            self._blob.reload()
            generation = self._blob.generation
            info = _parse(self._blob.download_as_text(if_generation_match=generation))
        except self._not_found:  # released between our attempts: try once more
            self._generation = self._write(if_generation_match=0)
            return
        except self._precondition_failed:  # rewritten as we read it: its holder is alive
            raise _refusal(self.workdir, self.path, _parse(self._blob.download_as_text())) from None
        age = time.time() - float(info.get("heartbeat", 0.0))
        if age <= self.stale_secs and not _gone_from_this_host(info):
            raise _refusal(self.workdir, self.path, info)
        try:
            self._generation = self._write(if_generation_match=generation)
        except self._precondition_failed:  # another run took it over first, or it came back
            raise _refusal(self.workdir, self.path, _parse(self._blob.download_as_text())) from None
        logging.warning(
            "taking over the lock %s of a run that is no longer running (%s; last heartbeat "
            "%.0f s ago)",
            self.path,
            _describe(info),
            age,
        )

    def _beat(self):
        while not self._stop.wait(self.heartbeat_secs):
            try:
                self._generation = self._write(if_generation_match=self._generation)
            except self._precondition_failed:
                self._lost = (
                    f"the lock {self.path} of --workdir {self.workdir} was taken over by another "
                    f"run (this one missed heartbeats for over {self.stale_secs:.0f} s); this run "
                    "stops so that only one writes the workdir"
                )
                logging.error("%s", self._lost)
                return
            except Exception as err:  # pylint: disable=broad-exception-caught
                # A failed heartbeat is retried at the next one; only staleness loses the lock.
                logging.warning("workdir lock %s: heartbeat failed (%s)", self.path, err)

    def check(self):
        """Raises once another run has taken the lock over."""
        if self._lost:
            raise WorkdirLockedError(self._lost)

    def release(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._generation is not None and not self._lost:
            with contextlib.suppress(self._precondition_failed, self._not_found):
                self._blob.delete(if_generation_match=self._generation)
        self._generation = None


class _Follower:
    """Processes other than 0 of a multi-host job: process 0 holds the lock for the job."""

    def acquire(self):
        pass

    def check(self):
        pass

    def release(self):
        pass


@contextlib.contextmanager
def hold(workdir, heartbeat_secs: float = HEARTBEAT_SECS, stale_secs: float = STALE_SECS):
    """Holds the lock of `workdir` for the `with` block; yields an object whose `check()` raises
    `WorkdirLockedError` if the lock was lost (gs:// only)."""
    workdir = os.fspath(workdir)
    lock, error = _Follower(), None
    try:
        if jax.process_index() == 0:
            if workdir.startswith("gs://"):
                lock = _GcsLock(workdir, heartbeat_secs, stale_secs)
            else:
                lock = _LocalLock(os.path.abspath(workdir))
        lock.acquire()
    except Exception as err:  # pylint: disable=broad-exception-caught
        error = err  # raised below, after the other processes of a job have heard of it
    _agree(error, workdir)
    try:
        yield lock
    finally:
        lock.release()


def _agree(error, workdir):
    """Every process of a job raises when process 0 did not get the lock."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

        refused = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
        if refused and error is None:
            raise WorkdirLockedError(
                f"process 0 could not take the lock of --workdir {workdir}; its log says why"
            )
    if error is not None:
        raise error
