"""Video backends that misbehave on purpose, for fault-injection tests of the data pipeline.

Each is an opener ``(local path or bytes, name) -> reader`` (`data_pipeline.video.Backend`)
that decodes ordinary files with decord and misbehaves on files whose name says so. They
live in a module of their own so that decoder processes and grain workers, which get the
opener pickled by reference, can import it (the tests folder is on their ``sys.path``).
"""

import os
import re
import signal


from data_pipeline import video


class _Reader:
    def __init__(self, resolved, name, behaviour):
        self._inner = video.BACKENDS["decord"](resolved, name)
        self._behaviour = behaviour if behaviour in os.path.basename(name) else None

    def __len__(self):
        return len(self._inner)

    def read(self, indices):
        if self._behaviour == "hang":
            # decord#373 in miniature: a loop in C that never ends and never lets go of
            # the interpreter (catastrophic regex backtracking), so that no thread or
            # signal handler of this process could stop it.
            re.fullmatch(r"(a+)+b", "a" * 64)
        frames = self._inner.read(indices)  # [T, H, W, 3]
        if self._behaviour == "short":
            return frames[:-1]  # One frame fewer than asked for.
        if self._behaviour == "crash":
            os.kill(os.getpid(), signal.SIGKILL)  # Dies mid-decode, as a crash in C would.
        return frames


def hang_on_hang(resolved, name):
    """Decodes files normally, except that reading a file named ``*hang*`` never returns."""
    return _Reader(resolved, name, "hang")


def short_on_short(resolved, name):
    """Returns one frame fewer than asked for from files named ``*short*``."""
    return _Reader(resolved, name, "short")


def crash_on_crash(resolved, name):
    """Kills the decoding process on files named ``*crash*``."""
    return _Reader(resolved, name, "crash")
