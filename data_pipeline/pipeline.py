"""grain input pipelines: uint8 clip batches for training and multi-view evaluation.

Training::

    MapDataset.range(N) -> shuffle(seed) -> repeat() -> (global position g, index)
      -> [start_position:][process_index::process_count] -> map(load + host augmentation)
      -> to_iter_dataset -> batch(drop_remainder=True) -> mp_prefetch(worker processes)

Evaluation::

    MapDataset.range(padded N) -> map(load views) -> batch -> to_iter_dataset -> mp_prefetch

* Epochs: ``shuffle`` before an infinite ``repeat``; grain folds the epoch number into
  the shuffle seed, so every epoch has its own order and epochs never mix. The iterator
  never ends: the training loop counts steps.
* Processes: all processes see the same globally shuffled stream, and process p takes
  positions ``s + p, s + p + P, s + p + 2P, ...`` of it (s = ``start_position``, 0
  unless restarting), so together they read every video of an epoch once and no process
  needs the others' data.
* Randomness: every per-sample draw (TSN offsets, RandAugment, crop, flip) comes from
  ``np.random.default_rng([seed, g])`` with g the sample's position in the global
  stream (which fixes the epoch and the video). So a sample's clip does not depend on
  the process count, the worker count or on having been resumed. Batch composition is
  fixed for a given (process count, worker count): with W worker processes, worker w
  batches positions w, w + W, ... of its process's samples.
* Evaluation: process p takes videos ``p, p + P, ...`` in list order; every process yields
  the same number of full batches, the last ones padded with ``mask = False`` rows, so that
  every video is counted exactly once globally. Workers get whole batches.

Batches are per-process (local) numpy dicts::

    video  uint8 [b, T, S, S, 3]      (train)  or  [b, V, T, S, S, 3]  (eval, V = clips*crops)
    label  int32 [b]
    index  int64 [b]   position of the requested video in the source (-1 for padding)
    mask   bool  [b]   True for rows that count (eval padding and unreadable videos: False)
    bad    int32 [b]   1 where the requested video was unreadable and replaced

* Worker processes: batches come over a pipe, as ordinary numpy arrays that the caller
  owns, not in grain's shared memory. grain (0.2.18) makes the receiving process unlink
  each shared-memory batch when the array is garbage collected, on a background thread
  whose pending work Python's exit handlers discard; and batches outlive the iterator in
  places the caller does not control (an exhausted worker's last batch stays referenced
  from its StopIteration's traceback, a zero-copy ``jax.Array`` keeps its host buffer).
  Whatever was not unlinked by exit was reported by Python's resource tracker as "leaked
  shared_memory objects", at random. A pipe costs copies (measured in
  docs/data_reliability.md) and leaves nothing to free: ``close()`` an iterator to stop
  its workers at once (grain also does it at garbage collection and exit). Workers exit
  within a second when their parent process dies, even by kill -9
  (`processes.grain_worker_init`).
* Video decoding: with ``decode_timeout_s > 0`` each thread that decodes video files does
  it in a child process, killed when one sample takes longer (`processes.VideoDecoder`);
  the sample counts as unreadable. ``video_backend`` picks decord or PyAV.

Photometric augmentation and normalisation are not done here: they run on the device
(``actionclip_jax.augment``) so that uint8 crosses to the device. `to_global` turns local
batches into global ``jax.Array`` s.

Unreadable data (missing, zero-byte, truncated, undecodable videos, frame folders or
frames; a video that takes longer than the time limit, or for which the decoder returns
other frames than asked for): the sample is replaced by the next readable one in source
order (index + 1, + 2, ... modulo N, at most ``max_replacements`` tries), the path is
logged once per process with ``absl.logging``, and the row has ``bad = 1``. With
``strict=True`` the first unreadable sample raises `BadSampleError` instead.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grain
import numpy as np
from absl import logging

from data_pipeline import processes, sampling, transforms
from data_pipeline import sources as sources_lib
from data_pipeline import video as video_lib

Batch = dict[str, np.ndarray]

# Errors that mean "this sample's data is bad" (FileNotFoundError is an OSError,
# VideoDecodeError a ValueError); anything else is a bug and propagates.
_BAD_DATA_ERRORS = (OSError, ValueError)

# Paths already reported by this process (the log says each once).
_reported_paths: set[str] = set()


class BadSampleError(RuntimeError):
    """An unreadable sample in strict mode, or too many unreadable samples in a row."""


class DataWorkerError(RuntimeError):
    """A grain worker process died (killed by a signal or crashed) while a pipeline ran."""


# grain (0.2.18) reports a worker that died between batches with a bare RuntimeError; its text
# is all there is to tell it apart (tests/test_train.py kills a real worker).
_WORKER_DIED = re.compile(r"Worker process was terminated unexpectedly with exit code (-?\d+)")
# multiprocessing names grain's worker processes after this prefix (grain 0.2.18).
_WORKER_NAME = "grain-process-prefetch"


def _worker_error(what: str, code: int) -> DataWorkerError:
    """`DataWorkerError` for a worker of ``what`` that ended with exit code ``code``."""
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    cause = (
        " (a SIGKILL nobody sent by hand is most often the kernel's out-of-memory killer: "
        "`dmesg` or `journalctl -k` names its victims)"
        if code == -signal.SIGKILL
        else " (its own error, if any, is in the log above)"
    )
    return DataWorkerError(
        f"a grain worker process of the {what} {how}{cause}. Each worker holds its decoded "
        "batches in memory: lower data.workers or data.batch_size per host, or give the host "
        "more memory"
    )


class WatchedIterator:
    """A grain iterator's batches, read so that a dead worker process stops the reader.

    grain notices a dead worker only between batches. A worker killed while it writes a batch
    into its pipe (the kernel's out-of-memory killer favours big decoding processes) leaves
    grain's reading thread waiting for the rest of that batch forever, and the training loop
    with it. So each batch is read in a daemon thread; while waiting for it, this checks the
    grain worker processes that started after it was made and were alive while it waited, and
    raises `DataWorkerError` when one has ended with a nonzero code. The grain iterator itself
    (``iterator``) keeps its ``get_state`` for checkpoints: it records each worker's position
    as batches arrive, so after a death it still holds the position of the last batch handed
    out.

    ``close()`` it instead of the grain iterator: after a death it stops the surviving workers
    and leaves the stuck thread (grain's ``close`` would wait for it).
    """

    POLL_S = 1.0  # how often a wait checks the workers

    def __init__(self, iterator, what: str):
        self.iterator = iterator
        self.what = what  # named in the error: "training data", "evaluation list val.txt"
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Workers of other pipelines (alive before this one started any) are not watched: a
        # notebook's forgotten iterator may lose its workers at any time.
        self._others = {p.pid for p in self._grain_workers()}
        self._workers: dict[int, multiprocessing.Process] = {}  # pid → every worker seen alive
        self._stuck = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._stuck:
            raise DataWorkerError(f"the {self.what} lost a worker process; this reader is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="grain-reader", daemon=True)
            self._thread.start()
        self._requests.put(True)
        while True:
            self._note_workers()
            try:
                ok, value = self._results.get(timeout=self.POLL_S)
            except queue.Empty:
                dead = [p.exitcode for p in self._workers.values() if p.exitcode]
                if dead:
                    self._stuck = True
                    raise _worker_error(self.what, dead[0]) from None
                continue
            if ok:
                return value
            found = _WORKER_DIED.search(str(value)) if isinstance(value, RuntimeError) else None
            if found:
                raise _worker_error(self.what, int(found.group(1))) from value
            raise value  # StopIteration at the end of an evaluation list, or the pipeline's error

    def _read(self):
        while self._requests.get():
            try:
                self._results.put((True, next(self.iterator)))
            except BaseException as err:  # pylint: disable=broad-exception-caught
                self._results.put((False, err))  # raised by __next__ in the caller's thread

    @staticmethod
    def _grain_workers() -> list[multiprocessing.Process]:
        return [p for p in multiprocessing.active_children() if p.name.startswith(_WORKER_NAME)]

    def _note_workers(self):
        for p in self._grain_workers():
            if p.pid not in self._others:
                self._workers.setdefault(p.pid, p)

    def close(self):
        if self._stuck:
            for p in self._workers.values():
                if p.is_alive():
                    p.kill()
                p.join(timeout=5)
            return
        if self._thread is not None:
            self._requests.put(False)  # the thread ends once it is idle
        self.iterator.close()  # stops its worker and decoder processes at once


class _ClipLoader:
    """Decodes source samples, replacing unreadable ones deterministically.

    Pickled into each grain worker process; each keeps its own memory of bad indices
    (and starts its own decoder processes).
    """

    def __init__(
        self,
        source: Any,
        *,
        strict: bool,
        max_replacements: int,
        image_tmpl: str,
        index_bias: int,
        decoder: processes.VideoDecoder,
    ):
        self.source = source
        self.strict = strict
        self.max_replacements = max_replacements
        self.image_tmpl = image_tmpl
        self.index_bias = index_bias
        self.decoder = decoder
        self._known_bad: set[int] = set()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_known_bad"] = set()
        return state

    def load(self, index: int, attempt_fn) -> tuple[Any, int, bool]:
        """Returns ``(attempt_fn(record, load), label, replaced)`` for the first readable
        sample at ``index``, ``index + 1``, ... (modulo the source length).

        ``attempt_fn`` gets the record and a ``load(indices_fn) -> frames`` function; it
        must draw any randomness afresh on each call so that a replacement does not
        depend on how many tries came before (the memory of bad samples differs between
        processes and restarts).
        """
        size = len(self.source)
        for attempt in range(min(self.max_replacements + 1, size)):
            candidate = (index + attempt) % size
            if candidate in self._known_bad:
                continue
            record = self.source[candidate]

            def load(indices_fn, record=record):
                return sources_lib.load_clip(
                    record,
                    indices_fn,
                    image_tmpl=self.image_tmpl,
                    index_bias=self.index_bias,
                    decode_video=self.decoder,
                )

            try:
                return attempt_fn(record, load), int(record["label"]), candidate != index
            except _BAD_DATA_ERRORS as e:
                path = str(record.get("path", candidate))
                if self.strict:
                    raise BadSampleError(
                        f"unreadable sample {candidate} ({path}): {e} (strict mode; run "
                        f"python -m data_pipeline.check to list every problem)"
                    ) from e
                self._known_bad.add(candidate)
                if path not in _reported_paths:
                    _reported_paths.add(path)
                    logging.warning(
                        "unreadable sample %d (%s), replaced by the next readable one: %s",
                        candidate,
                        path,
                        e,
                    )
        raise BadSampleError(
            f"samples {index}..{index + self.max_replacements} (modulo {size}) are all "
            f"unreadable; the data looks broken (run python -m data_pipeline.check)"
        )


def _with_position(position: int, index: int) -> tuple[int, int]:
    # A module-level function, not a lambda: grain pickles the pipeline into workers.
    return position, index


def _sample_rng(seed: int, position: int) -> np.random.Generator:
    return np.random.default_rng([seed, position])


class _TrainExample:
    """(global position, index) -> one augmented training clip (a grain map function)."""

    def __init__(
        self,
        loader: _ClipLoader,
        *,
        seed: int,
        num_frames: int,
        input_size: int,
        flip: bool,
        scales: Sequence[float] | None,
        randaug_n: int,
        randaug_m: int,
    ):
        self.loader = loader
        self.seed = seed
        self.num_frames = num_frames
        self.input_size = input_size
        self.flip = flip
        self.scales = None if scales is None else tuple(scales)
        self.randaug_n = randaug_n
        self.randaug_m = randaug_m

    def __call__(self, position_and_index: tuple[int, int]) -> dict[str, np.ndarray]:
        position, index = (int(x) for x in position_and_index)

        def attempt(record, load):
            rng = _sample_rng(self.seed, position)
            frames = load(lambda f: sampling.train_indices(f, self.num_frames, rng))
            return frames, rng

        (frames, rng), label, replaced = self.loader.load(index, attempt)  # [T, H, W, 3]
        # The original's order: RandAugment on full-resolution frames, then crop and flip.
        if self.randaug_n > 0:
            frames = transforms.rand_augment_clip(frames, rng, self.randaug_n, self.randaug_m)
        kwargs = {} if self.scales is None else {"scales": self.scales}
        frames = transforms.train_geometric(
            frames, rng, input_size=self.input_size, flip=self.flip, **kwargs
        )  # [T, S, S, 3]
        return {
            "video": np.ascontiguousarray(frames, np.uint8),
            "label": np.int32(label),
            "index": np.int64(index),
            "mask": np.bool_(True),
            "bad": np.int32(replaced),
        }


class _EvalExample:
    """Slot k of this process -> all views of one video, or a padding row."""

    def __init__(
        self,
        loader: _ClipLoader,
        *,
        num_videos: int,
        process_index: int,
        process_count: int,
        num_frames: int,
        num_clips: int,
        num_crops: int,
        input_size: int,
        scale_size: int,
        sampling: str = "segments",
        stride: int = 16,
    ):
        self.loader = loader
        self.num_videos = num_videos
        self.process_index = process_index
        self.process_count = process_count
        self.num_frames = num_frames
        self.num_clips = num_clips
        self.num_crops = num_crops
        self.input_size = input_size
        self.scale_size = scale_size
        self.sampling = sampling
        self.stride = stride

    def _indices(self, num_frames: int) -> np.ndarray:
        if self.sampling == "window":
            clip = lambda k: sampling.window_indices(  # noqa: E731
                num_frames, self.num_frames, self.stride, self.num_clips, k
            )
        else:
            clip = lambda k: sampling.test_indices(  # noqa: E731
                num_frames, self.num_frames, self.num_clips, k
            )
        return np.concatenate([clip(k) for k in range(self.num_clips)])  # [K*T], clip-major

    def __call__(self, slot: int) -> dict[str, np.ndarray]:
        index = self.process_index + int(slot) * self.process_count
        t, k, c, s = self.num_frames, self.num_clips, self.num_crops, self.input_size
        if index >= self.num_videos:
            return {
                "video": np.zeros((k * c, t, s, s, 3), np.uint8),
                "label": np.int32(0),
                "index": np.int64(-1),
                "mask": np.bool_(False),
                "bad": np.int32(0),
            }
        frames, label, replaced = self.loader.load(
            index, lambda record, load: load(self._indices)
        )  # [K*T, H, W, 3]
        frames = transforms.resize_short_side(frames, self.scale_size)  # [K*T, H', W', 3]
        clips = frames.reshape((k, t) + frames.shape[1:])  # [K, T, H', W', 3]
        if c == 1:
            views = np.stack([transforms.center_crop(clip, s) for clip in clips])  # [K, T, S, S, 3]
        else:
            views = np.stack([transforms.three_crops(clip, s) for clip in clips])  # [K, 3, T, ...]
        return {
            "video": np.ascontiguousarray(views.reshape(k * c, t, s, s, 3), np.uint8),
            "label": np.int32(label),
            "index": np.int64(index),
            # A replaced video's rows hold another video: they must not count (and the
            # other video is counted at its own index already).
            "mask": np.bool_(not replaced),
            "bad": np.int32(replaced),
        }


def _process_layout(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax  # Only when the caller leaves it to JAX; tools never get here.

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    return process_index, process_count


# grain copies arrays of at least this many bytes into shared memory; none are (see the
# module docstring).
_NO_SHARED_MEMORY = sys.maxsize


def _build(
    data: Any,
    examples: Callable[[Any, _ClipLoader, int, int], grain.MapDataset],
    *,
    batch_size: int,
    whole_batches: bool,
    process_index: int | None,
    process_count: int | None,
    worker_count: int,
    worker_buffer_size: int,
    read_threads: int,
    strict: bool,
    max_replacements: int,
    root: str | os.PathLike | None,
    labels: Any,
    kind: str | None,
    split: str | None,
    tfds_data_dir: str | os.PathLike | None,
    image_tmpl: str,
    index_bias: int,
    video_backend: video_lib.Backend,
    decode_timeout_s: float,
) -> grain.IterDataset:
    """What `train_dataset` and `eval_dataset` share: the source, the loader, batching and
    the spread over processes and workers.

    ``examples(source, loader, process_index, process_count)`` gives the map dataset of
    this process's examples. ``mp_prefetch`` gives worker w every W-th element of the
    iterable it slices. ``whole_batches=False`` (training, an endless stream): the
    elements are samples, each worker batches its own, with the remainder dropped, so
    batches are full and their composition depends on W. ``whole_batches=True``
    (evaluation, a finite list padded to whole batches): batches are formed first and
    handed out whole, so every batch is full and the same for any W; batching each
    worker's samples there would leave ragged batches (e.g. 4 + 4 of 8 padded slots with
    two workers) that cannot be split evenly over the devices.
    """
    process_index, process_count = _process_layout(process_index, process_count)
    source = sources_lib.open_source(
        data, split=split, root=root, labels=labels, kind=kind, tfds_data_dir=tfds_data_dir
    )
    loader = _ClipLoader(
        source,
        strict=strict,
        max_replacements=max_replacements,
        image_tmpl=image_tmpl,
        index_bias=index_bias,
        decoder=processes.VideoDecoder(video_backend, decode_timeout_s),
    )
    ds = examples(source, loader, process_index, process_count)
    # grain's default read-ahead is 500 elements, i.e. gigabytes of decoded clips. Enough
    # look-ahead for every read thread to have work: one batch of samples, or one whole
    # batch per thread.
    if whole_batches:
        ds = ds.batch(batch_size, drop_remainder=False)
        prefetch = max(1, read_threads)
    else:
        prefetch = max(1, batch_size)
    read_options = grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch)
    it = ds.to_iter_dataset(read_options)
    if not whole_batches:
        it = it.batch(batch_size, drop_remainder=True)
    if worker_count > 0:
        # Also keeps the batching step from writing into shared memory: grain does that
        # only for a batch handed straight to mp_prefetch.
        it = grain.experimental.WithOptionsIterDataset(
            it, grain.experimental.DatasetOptions(min_shm_size=_NO_SHARED_MEMORY)
        )
        it = it.mp_prefetch(
            grain.MultiprocessingOptions(
                num_workers=worker_count, per_worker_buffer_size=worker_buffer_size
            ),
            worker_init_fn=processes.grain_worker_init,
        )
    return it


def train_dataset(
    data: Any,
    *,
    batch_size: int,
    num_frames: int = 8,
    input_size: int = 224,
    flip: bool = True,
    scales: Sequence[float] | None = None,
    randaug_n: int = 0,
    randaug_m: int = 9,
    seed: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
    worker_count: int = 0,
    worker_buffer_size: int = 2,
    read_threads: int = 1,
    strict: bool = False,
    max_replacements: int = 32,
    root: str | os.PathLike | None = None,
    labels: Any = None,
    kind: str | None = None,
    split: str = "train",
    tfds_data_dir: str | os.PathLike | None = None,
    image_tmpl: str = "img_{:05d}.jpg",
    index_bias: int = 1,
    video_backend: video_lib.Backend = "decord",
    decode_timeout_s: float = 0.0,
    start_position: int = 0,
) -> grain.IterDataset:
    """The infinite training dataset of local batches (see the module docstring).

    Args:
      data: What to read: a list file, a TFDS dataset folder, ``"tfds:<name>"`` or a
        source object (see `sources.open_source`).
      batch_size: Per-process batch size.
      num_frames: T, frames per clip (TSN segments).
      input_size: S, side of the square training crop.
      flip: Random horizontal flip of the whole clip (False for something-something).
      scales: Multi-scale crop scales (``transforms.train_geometric``'s default if None).
      randaug_n: RandAugment ops per frame; 0 disables it (the original uses it for K400
        only).
      randaug_m: RandAugment magnitude.
      seed: Shuffle and augmentation seed (>= 0).
      process_index: This JAX process (``jax.process_index()`` if None).
      process_count: Number of processes (``jax.process_count()`` if None).
      worker_count: grain worker processes (0: decode in this process).
      worker_buffer_size: Batches each worker prepares ahead.
      read_threads: Decoding threads per process (worker); more help on remote storage.
      strict: Fail on the first unreadable sample instead of replacing it.
      max_replacements: How many following samples to try before giving up.
      root: Folder that relative list-file paths are relative to.
      labels: Class names / label CSV / built-in name / class count, to check label ids.
      kind: Forces ``"frames"`` or ``"video"`` for list-file entries.
      split: TFDS split.
      tfds_data_dir: ``data_dir`` for ``"tfds:<name>"``.
      image_tmpl: Frame file-name template.
      index_bias: Number of the first frame file.
      video_backend: Decoder of video files: ``"decord"``, ``"pyav"`` or an opener
        (`video.Backend`).
      decode_timeout_s: Seconds one video sample may take to decode, in a decoder
        process that is killed when it takes longer (the sample is then unreadable);
        0 decodes in the loading thread, without limit.
      start_position: Position in the global stream to start at (a multiple of the global
        batch): restarting an epoch after the process or worker count changed, when a
        saved iterator state no longer applies. Samples depend only on their position,
        so the restarted stream has the same clips as an uninterrupted one.

    Returns:
      A grain ``IterDataset`` of batches ``video uint8 [b, T, S, S, 3]``, ``label int32
      [b]``, ``index int64 [b]``, ``mask bool [b]`` (all True), ``bad int32 [b]``.
    """
    example = {
        "seed": seed,
        "num_frames": num_frames,
        "input_size": input_size,
        "flip": flip,
        "scales": scales,
        "randaug_n": randaug_n,
        "randaug_m": randaug_m,
    }

    def examples(source, loader, process_index, process_count):
        ds = grain.MapDataset.range(len(source)).shuffle(seed=seed).repeat(None)
        ds = ds.map_with_index(_with_position)
        ds = ds[start_position:][process_index::process_count]
        return ds.map(_TrainExample(loader, **example))

    return _build(
        data,
        examples,
        batch_size=batch_size,
        whole_batches=False,
        process_index=process_index,
        process_count=process_count,
        worker_count=worker_count,
        worker_buffer_size=worker_buffer_size,
        read_threads=read_threads,
        strict=strict,
        max_replacements=max_replacements,
        root=root,
        labels=labels,
        kind=kind,
        split=split,
        tfds_data_dir=tfds_data_dir,
        image_tmpl=image_tmpl,
        index_bias=index_bias,
        video_backend=video_backend,
        decode_timeout_s=decode_timeout_s,
    )


def make_train_iterator(data: Any, **kwargs) -> grain.DatasetIterator:
    """``iter(train_dataset(data, **kwargs))``: has ``get_state`` / ``set_state``.

    ``close()`` it when done: that stops its worker and decoder processes at once.
    """
    return iter(train_dataset(data, **kwargs))


def eval_num_batches(num_videos: int, batch_size: int, process_count: int) -> int:
    """Batches every process yields for ``num_videos`` videos (the same on each)."""
    per_process = -(-num_videos // process_count)
    return -(-per_process // batch_size)


def eval_dataset(
    data: Any,
    *,
    batch_size: int,
    num_frames: int = 8,
    num_clips: int = 1,
    num_crops: int = 1,
    input_size: int = 224,
    scale_size: int | None = None,
    sampling: str = "segments",
    stride: int = 16,
    process_index: int | None = None,
    process_count: int | None = None,
    worker_count: int = 0,
    worker_buffer_size: int = 2,
    read_threads: int = 1,
    strict: bool = False,
    max_replacements: int = 32,
    root: str | os.PathLike | None = None,
    labels: Any = None,
    kind: str | None = None,
    split: str | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    image_tmpl: str = "img_{:05d}.jpg",
    index_bias: int = 1,
    video_backend: video_lib.Backend = "decord",
    decode_timeout_s: float = 0.0,
) -> grain.IterDataset:
    """One pass over the evaluation data, every video once (see the module docstring).

    Each video gives ``V = num_clips * num_crops`` views (clip-major: view ``i`` is clip
    ``i // num_crops``, crop ``i % num_crops``). A clip takes the centre frame of each of
    T segments (``sampling.test_indices``); its frames are resized to short side
    ``scale_size`` (bicubic) and cut to one centre crop or three crops of
    ``input_size``. The original evaluates 1 clip x 1 crop; the paper 10 x 3.

    Args:
      data: See `train_dataset`.
      batch_size: Per-process batch size.
      num_frames: T.
      num_clips: Temporal views per video.
      num_crops: 1 (centre crop) or 3 (three crops along the longer side).
      input_size: S, the crop side.
      scale_size: Short side before cropping; ``input_size * 256 // 224`` if None (256
        for 224, as the original).
      sampling: ``"segments"`` (the centre of each of T segments, ``sampling.test_indices``)
        or ``"window"`` (PySlowFast's, ``sampling.window_indices``, with ``stride``).
      stride: Frames between a window's frames (``sampling="window"``).
      process_index: This JAX process (``jax.process_index()`` if None).
      process_count: Number of processes (``jax.process_count()`` if None).
      worker_count: grain worker processes.
      worker_buffer_size: Batches each worker prepares ahead.
      read_threads: Threads per process (worker), each reading whole batches (this many
        batches are read ahead).
      strict: Fail on the first unreadable video.
      max_replacements: See `train_dataset`.
      root: Folder that relative list-file paths are relative to.
      labels: Class names / label CSV / built-in name / class count, to check label ids.
      kind: Forces ``"frames"`` or ``"video"`` for list-file entries.
      split: TFDS split (required for TFDS data, e.g. ``"val"`` or ``"validation"``).
      tfds_data_dir: ``data_dir`` for ``"tfds:<name>"``.
      image_tmpl: Frame file-name template.
      index_bias: Number of the first frame file.
      video_backend: See `train_dataset`.
      decode_timeout_s: See `train_dataset`.

    Returns:
      A finite grain ``IterDataset`` of `eval_num_batches` batches: ``video uint8 [b, V,
      T, S, S, 3]``, ``label``, ``index`` (-1 on padding), ``mask`` (False on padding and
      on unreadable videos, whose replacement is flagged ``bad = 1``), ``bad``.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if sampling not in ("segments", "window"):
        raise ValueError(f"sampling must be 'segments' or 'window', got {sampling!r}")
    example = {
        "num_frames": num_frames,
        "num_clips": num_clips,
        "num_crops": num_crops,
        "input_size": input_size,
        "scale_size": input_size * 256 // 224 if scale_size is None else scale_size,
        "sampling": sampling,
        "stride": stride,
    }

    def examples(source, loader, process_index, process_count):
        num_slots = eval_num_batches(len(source), batch_size, process_count) * batch_size
        return grain.MapDataset.range(num_slots).map(
            _EvalExample(
                loader,
                num_videos=len(source),
                process_index=process_index,
                process_count=process_count,
                **example,
            )
        )

    return _build(
        data,
        examples,
        batch_size=batch_size,
        whole_batches=True,
        process_index=process_index,
        process_count=process_count,
        worker_count=worker_count,
        worker_buffer_size=worker_buffer_size,
        read_threads=read_threads,
        strict=strict,
        max_replacements=max_replacements,
        root=root,
        labels=labels,
        kind=kind,
        split=split,
        tfds_data_dir=tfds_data_dir,
        image_tmpl=image_tmpl,
        index_bias=index_bias,
        video_backend=video_backend,
        decode_timeout_s=decode_timeout_s,
    )


def make_eval_iterator(data: Any, **kwargs) -> grain.DatasetIterator:
    """``iter(eval_dataset(data, **kwargs))``; ``close()`` it when done (see above)."""
    return iter(eval_dataset(data, **kwargs))


def to_global(batch: Batch, mesh, spec=None):
    """Assembles per-process batches into global ``jax.Array`` s.

    Args:
      batch: This process's batch (every leaf has the local batch as leading axis).
      mesh: The ``jax.sharding.Mesh``.
      spec: ``PartitionSpec`` for the leading axis; by default it is split over all mesh
        axes (pure data parallelism).

    Returns:
      The same tree of global arrays; the global batch is ``process_count`` times the
      local one, laid out in process order.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if spec is None:
        spec = PartitionSpec(tuple(mesh.axis_names))
    sharding = NamedSharding(mesh, spec)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
