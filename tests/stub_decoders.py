"""A video backend that misbehaves on purpose, for fault-injection tests of the data pipeline.

`misbehaving` is an opener ``(local path or bytes, name) -> reader`` (`data_pipeline.video.
Backend`) that decodes ordinary files with decord and misbehaves on files whose name says
how: ``*hang*`` never returns, ``*short*`` returns one frame fewer than asked for,
``*crash*`` kills the decoding process, ``*leak*`` keeps 128 MiB more memory on each read. It lives in a module of its own so that decoder
processes and grain workers, which get the opener pickled by reference, can import it (the
tests folder is on their ``sys.path``).
"""

import os
import re
import signal

import numpy as np

from data_pipeline import video

BEHAVIOURS = ("hang", "short", "crash", "leak")
_LEAKED = []


class _Reader:
    def __init__(self, resolved, name):
        self._inner = video.BACKENDS["decord"](resolved, name)
        base = os.path.basename(name)
        self._behaviour = next((b for b in BEHAVIOURS if b in base), None)

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
            return frames[:-1]
        if self._behaviour == "crash":
            os.kill(os.getpid(), signal.SIGKILL)  # Dies mid-decode, as a crash in C would.
        if self._behaviour == "leak":
            _LEAKED.append(np.ones(128 << 20, np.uint8))  # Touched: resident memory.
        return frames


def misbehaving(resolved, name):
    """Opens a video; reading misbehaves as the file's name says (see the module docstring)."""
    return _Reader(resolved, name)
