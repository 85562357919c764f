"""Metric writing and progress reporting.

TensorBoard event files are written with tensorboardX, not with `clu.metric_writers`: clu's writers
and `clu.periodic_actions` import TensorFlow (a 1.3 GB dependency that nothing else here needs;
the data pipeline reads TFDS shards without it). `docs/training.md` records this choice. Only
process 0 writes; the other processes log nothing.
"""

import json
import logging as logging_std
import sys
import time

import jax
import numpy as np
from absl import logging
from clu import parameter_overview
from etils import epath


class _QuietLibraries(logging_std.Filter):
    """Drops INFO chatter of orbax and grain (dozens of lines per checkpoint); keeps warnings."""

    def filter(self, record):
        noisy = "/orbax/" in record.pathname or "/grain/" in record.pathname
        return record.levelno >= logging_std.WARNING or not noisy


def quiet_library_logs():
    handler = logging.get_absl_handler()
    if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
        handler.addFilter(_QuietLibraries())


def log_parameter_overview(params) -> None:
    """Logs a table of the parameters (path, shape, size) and their total, on process 0."""
    if jax.process_index() == 0:
        logging.info(
            "parameters:\n%s", parameter_overview.get_parameter_overview(params, include_stats=False)
        )


class MetricWriter:
    """Scalars, images and text to TensorBoard (`WORKDIR/tb`) and to the log, on process 0."""

    def __init__(self, workdir, enabled: bool | None = None):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self._tb = None
        if self.enabled:
            from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel

            self._tb = SummaryWriter(str(epath.Path(workdir) / "tb"), flush_secs=30)

    def write_scalars(self, step: int, scalars: dict):
        if not self.enabled:
            return
        for k, v in scalars.items():
            self._tb.add_scalar(k, float(v), step)
        text = ", ".join(f"{k}={float(v):.5g}" for k, v in sorted(scalars.items()))
        logging.info("[%d] %s", step, text)

    def write_image(self, step: int, tag: str, image_hwc_uint8: np.ndarray):
        if self.enabled:
            self._tb.add_image(tag, image_hwc_uint8, step, dataformats="HWC")

    def write_text(self, step: int, tag: str, text: str):
        if self.enabled:
            self._tb.add_text(tag, text, step)

    def flush(self):
        if self.enabled:
            self._tb.flush()

    def close(self):
        if self.enabled:
            self._tb.close()


class ProgressReport:
    """A terminal progress bar with steps/s and an ETA, on process 0 (stderr)."""

    def __init__(self, total_steps: int, start_step: int = 0, width: int = 30, every_secs=2.0):
        self.total, self.start, self.width, self.every = total_steps, start_step, width, every_secs
        self.t0 = time.time()
        self.last = 0.0
        self.enabled = jax.process_index() == 0

    def __call__(self, step: int, force: bool = False, extra: str = ""):
        now = time.time()
        if not self.enabled or (not force and now - self.last < self.every):
            return
        self.last = now
        done = step - self.start
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        frac = step / max(self.total, 1)
        bar = "#" * int(frac * self.width)
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "--:--:--"
        line = (
            f"\r[{bar:<{self.width}}] {step}/{self.total} {frac:6.1%} "
            f"{rate:.2f} steps/s ETA {eta_text} {extra}"
        )
        sys.stderr.write(line)
        sys.stderr.flush()
        if step >= self.total:
            sys.stderr.write("\n")


def write_json(path, obj):
    """Writes JSON atomically (temp file + rename): a reader never sees half a file."""
    path = epath.Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    tmp.replace(path)
