"""Processes of the data pipeline: a killable video decoder, and children that die with their parent.

Decoding under a time limit. A C decoder can hang (decord's ``get_batch`` loops forever
on a file whose header over-reports its frame count, dmlc/decord#373) or crash, and a
hung C call cannot be interrupted from Python: neither a thread nor a signal handler
runs while it holds the interpreter. So `VideoDecoder` with a time limit decodes in a
child process (one per thread that decodes, started on first use) and waits for the
answer at most ``timeout_s`` seconds per sample. A sample that takes longer raises
`DecodeTimeoutError`, a child that dies mid-sample (a crash in the decoder) raises
`VideoDecodeError`; both are ``ValueError`` s, i.e. bad data that the pipeline replaces
and counts. The child is then killed and a fresh one is started for the next sample.

The exchange for one sample: the parent sends the path, the child opens the video and
answers its frame count, the parent answers the frame indices (so that the caller's
``indices_fn`` and its random draws stay in the parent), the child answers the frames
(raw bytes straight into a numpy array) or the error, plus the warnings it logged.

Memory. decord's decoder threads can buffer or leak decoded frames in native memory
(dmlc/decord#197, #208). A decoder process whose resident memory has grown past
``memory_limit_mb`` after a sample says so with its answer; the parent then closes it
and the next sample starts a fresh one, so such growth never accumulates.

No orphans. A decoder child asks the kernel for SIGKILL when the thread that started it
ends (``PR_SET_PDEATHSIG``; Linux), which includes its whole process dying to kill -9,
and it exits when its request pipe closes. grain's worker processes are started by
grain's threads, whose ends say nothing about the workers' lives, so they run
`watch_parent` instead (``grain_worker_init``): a thread that exits the worker as soon
as its parent is gone. Python's resource tracker exits by itself once every process
that talks to it has.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing import connection

import numpy as np

from data_pipeline import video as video_lib

_log = logging.getLogger(__name__)

# How long a new decoder process may take to import its modules (seconds). Generous:
# on a loaded machine importing numpy, decord and PyAV takes seconds; a start-up that
# fails is an environment problem, reported as such, not a bad sample.
_START_TIMEOUT_S = 120.0
# How often a worker's watch thread looks at its parent (seconds).
_PARENT_POLL_S = 0.5
# Resident memory after which a decoder process is replaced (MiB): several times what
# decoding one clip needs (~100 MiB for 8 frames of 340x256, under 1 GiB for 30 views
# of 1080p), far below the gigabytes that decord's leaks reach.
MEMORY_LIMIT_MB = 2048

_PR_SET_PDEATHSIG = 1  # From <linux/prctl.h>.


class DecodeTimeoutError(video_lib.VideoDecodeError):
    """Decoding one sample took longer than the time limit."""


# ---------------------------------------------------------------------------------------
# Children that die with their parent
# ---------------------------------------------------------------------------------------


def die_with_parent_thread(parent_pid: int) -> None:
    """Asks the kernel to SIGKILL this process when the thread that started it ends.

    A signal from the kernel works even while this process is stuck in C code. Exits at
    once if the parent is already gone (it may die before this runs). Linux only;
    elsewhere the caller's other guards (an EOF on a pipe) remain.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def watch_parent(poll_s: float = _PARENT_POLL_S) -> threading.Thread:
    """Starts a daemon thread that exits this process when its parent process is gone.

    The parent is gone when this process has been re-parented (its parent pid changed,
    e.g. to 1 or a sub-reaper). ``os._exit``: nothing of the orphaned work is worth
    saving, and a normal exit could wait on queues whose reader is dead.
    """
    parent_pid = os.getppid()

    def watch():
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def grain_worker_init(worker_index: int, worker_count: int) -> None:
    """grain's ``worker_init_fn`` (``mp_prefetch``): the worker exits when its parent dies."""
    del worker_index, worker_count
    watch_parent()


# ---------------------------------------------------------------------------------------
# The decoder process
# ---------------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    # The child imports what this process imports, from the same places (tests and
    # uninstalled checkouts add to sys.path; a custom backend lives in such a module).
    paths = [os.getcwd() if p == "" else p for p in sys.path if isinstance(p, str)]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


class _DecoderProcess:
    """One child process that decodes videos on request (see the module docstring)."""

    def __init__(self, memory_limit_mb: int):
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    __name__,
                    str(request_read),
                    str(response_write),
                    str(os.getpid()),
                    str(memory_limit_mb),
                ],
                pass_fds=(request_read, response_write),
                stdin=subprocess.DEVNULL,
                env=_child_env(),
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._requests = connection.Connection(request_write, readable=False)
        self._responses = connection.Connection(response_read, writable=False)
        self._finalizer = weakref.finalize(
            self, _shut_down, self._proc, self._requests, self._responses
        )
        if not self._responses.poll(_START_TIMEOUT_S):
            self.close()
            raise RuntimeError(
                f"the video decoder process did not start within {_START_TIMEOUT_S:.0f} s"
            )
        try:
            self._responses.recv()  # "ready"
        except EOFError:
            code = self._proc.wait()
            self.close()
            raise RuntimeError(
                f"the video decoder process exited with code {code} while starting (its "
                f"error is printed above); check that `python -m {__name__}` runs"
            ) from None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """False once closed, killed or found dead."""
        return self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def read_clip(self, path: str, indices_fn, backend, timeout_s: float) -> np.ndarray:
        """`video.read_clip` in the child, within ``timeout_s`` (see the module docstring).

        Raises:
          DecodeTimeoutError: The time limit passed; the process is then killed.
          VideoDecodeError: The child died while decoding (it is gone then).
          What `video.read_clip` raises for this video.
        """
        deadline = time.monotonic() + timeout_s
        self._send(("clip", path, backend), path)
        indices = None
        while True:
            message = self._receive(path, deadline, timeout_s)
            kind = message[0]
            if kind == "count":
                try:
                    indices = np.asarray(indices_fn(message[1]), np.int64)
                except BaseException:
                    self.close()  # The child waits for indices that will not come.
                    raise
                self._send(("indices", indices), path)
            elif kind == "frames":
                _, shape, records, retire = message
                frames = np.empty(shape, np.uint8)  # [T, H, W, 3]
                try:
                    self._responses.recv_bytes_into(frames.reshape(-1))  # 1-D: bytes
                except (EOFError, OSError) as e:
                    raise self._died(path) from e
                self._after(records, retire)
                # Checked here too: the frames crossed a process boundary.
                return video_lib.checked_frames(frames, len(indices), path)
            else:  # "error"
                _, error, records, retire = message
                self._after(records, retire)
                raise error

    def _after(self, records, retire: bool) -> None:
        _relog(records)
        if retire:  # Grown past its memory limit: the next sample gets a fresh process.
            self.close()

    def _send(self, message, path: str) -> None:
        try:
            self._requests.send(message)
        except OSError as e:  # A dead child: its pipe is broken.
            raise self._died(path) from e

    def _receive(self, path: str, deadline: float, timeout_s: float):
        if not self._responses.poll(max(0.0, deadline - time.monotonic())):
            self.close()
            raise DecodeTimeoutError(
                f"cannot decode video {path}: decoding took longer than the time limit of "
                f"{timeout_s:g} s (data.decode_timeout_s, or --decode_timeout_s of "
                f"data_pipeline.check); the decoder process was killed. "
                f"A file whose header claims more frames than it holds makes decord loop "
                f"forever; try data.video_backend=pyav for such files"
            )
        try:
            return self._responses.recv()
        except (EOFError, OSError) as e:
            raise self._died(path) from e

    def _died(self, path: str) -> video_lib.VideoDecodeError:
        code = self._proc.wait()
        self.close()
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        return video_lib.VideoDecodeError(
            f"cannot decode video {path}: the decoder process died ({how}) while decoding it"
        )


def _shut_down(proc: subprocess.Popen, *connections: connection.Connection) -> None:
    for conn in connections:
        conn.close()  # An idle child reads EOF and exits.
    if proc.poll() is None:
        proc.kill()  # A busy one (or a hung one) is killed.
    proc.wait()


def _relog(records: Sequence[tuple[str, int, str]]) -> None:
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)


class VideoDecoder:
    """Decodes video files with a backend, within a time limit per sample when one is set.

    Picklable (it travels into grain's worker processes); each thread that decodes gets
    its own decoder process, started on first use.

    Attributes:
      backend: A `video.BACKENDS` name or an opener (`video.Backend`).
      timeout_s: Seconds one sample may take; 0 decodes in this process, without limit.
      memory_limit_mb: Resident memory past which a decoder process is replaced after
        its sample (see the module docstring).
    """

    def __init__(
        self,
        backend: video_lib.Backend = "decord",
        timeout_s: float = 0.0,
        memory_limit_mb: int = MEMORY_LIMIT_MB,
    ):
        video_lib._opener(backend)  # pylint: disable=protected-access  # Fails early on a bad name.
        if timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0 (0: no time limit), got {timeout_s}")
        self.backend = backend
        self.timeout_s = float(timeout_s)
        self.memory_limit_mb = int(memory_limit_mb)
        self._local = threading.local()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def __call__(self, path: str, indices_fn: Callable[[int], np.ndarray]) -> np.ndarray:
        """``video.read_clip(path, indices_fn, backend=...)``, within the time limit.

        Raises:
          DecodeTimeoutError: The sample took longer than ``timeout_s``.
          VideoDecodeError, FileNotFoundError: As `video.read_clip` (a decoder process
            that dies while decoding is a `VideoDecodeError` too).
        """
        if self.timeout_s == 0:
            return video_lib.read_clip(path, indices_fn, backend=self.backend)
        process = getattr(self._local, "process", None)
        if process is None or not process.alive:  # Killed or dead: start anew.
            process = self._local.process = _DecoderProcess(self.memory_limit_mb)
        return process.read_clip(path, indices_fn, self.backend, self.timeout_s)

    def decoder_pid(self) -> int | None:
        """The pid of this thread's decoder process, if one is running."""
        process = getattr(self._local, "process", None)
        return None if process is None or not process.alive else process.pid

    def __repr__(self) -> str:
        return f"VideoDecoder(backend={self.backend!r}, timeout_s={self.timeout_s:g})"


# ---------------------------------------------------------------------------------------
# The child's side
# ---------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the child's warnings for the parent to log (its stderr may go nowhere)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _transportable(error: BaseException) -> BaseException:
    """The error itself if it survives pickling, else a RuntimeError that says what it was."""
    if not isinstance(error, (OSError, ValueError)):  # A bug: keep the child's traceback.
        error.add_note(
            "in the video decoder process:\n" + "".join(traceback.format_exception(error))
        )
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001  # Whatever pickling raises, the parent gets a message.
        return RuntimeError(f"{type(error).__name__}: {error}")


def _resident_mb() -> float:
    """This process's resident memory now (Linux); its peak elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource  # pylint: disable=import-outside-toplevel  # Not on Windows.

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _serve(
    requests: connection.Connection, responses: connection.Connection, memory_limit_mb: int
) -> None:
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    responses.send(("ready",))
    while True:
        try:
            _, path, backend = requests.recv()
        except EOFError:  # The parent is done (or gone).
            return
        collect.records = []

        def indices_fn(num_frames: int) -> np.ndarray:
            responses.send(("count", num_frames))
            return requests.recv()[1]

        try:
            frames = np.ascontiguousarray(video_lib.read_clip(path, indices_fn, backend=backend))
        except Exception as e:  # noqa: BLE001  # Every error goes to the parent, which decides.
            retire = _resident_mb() > memory_limit_mb
            responses.send(("error", _transportable(e), collect.records, retire))
            continue
        retire = _resident_mb() > memory_limit_mb
        responses.send(("frames", frames.shape, collect.records, retire))
        responses.send_bytes(frames.reshape(-1))  # 1-D: multiprocessing counts items


def _main(argv: Sequence[str]) -> None:
    request_fd, response_fd, parent_pid, memory_limit_mb = (int(a) for a in argv)
    die_with_parent_thread(parent_pid)
    # The parent decides when this process ends: Ctrl-C or a SIGTERM sent to the whole
    # process group reaches the parent, which then closes the pipe or exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _serve(
        connection.Connection(request_fd, writable=False),
        connection.Connection(response_fd, readable=False),
        memory_limit_mb,
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
