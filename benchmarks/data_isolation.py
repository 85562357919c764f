r"""What the pipeline's safety costs: decoding in a killable process, and batches over a pipe.

    python benchmarks/data_isolation.py [--workdir=/tmp/actionclip_data_bench]
        [--num_videos=16 --seconds=6 --json=OUT]

Uses the raw videos of ``benchmarks/data_throughput.py`` (made once in the same
``--workdir``: 340x256 H.264, 250 frames, a keyframe every 16 and every 250 frames).

* ``decode``: training clips of 8 frames (TSN train sampling) decoded with
  `processes.VideoDecoder`, in this thread (``timeout_s=0``) and in a decoder process
  (``timeout_s=60``), for both backends. The four variants run in turns of 0.5 s so that
  a change of the machine's load hits them alike. Reported: clips per wall-clock second
  and CPU milliseconds per clip (this process plus the decoder process, read from
  ``/proc``). Also the start-up time of a decoder process (median of 5).
* ``transport``: grain worker processes (2) handing over batches ``[8, 8, 224, 224, 3]``
  uint8 made in the worker (no decoding) through grain's shared memory (grain's default)
  or through the pipe (``DatasetOptions(min_shm_size=...)`` above the batch size, what
  `pipeline` does). Reported: batches per second and this process's CPU milliseconds
  per batch; the shared-memory batches are copied out once, as a caller that keeps
  them past the next batch would have to.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import app

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Its media and its flags (--workdir, --num_videos, --seconds, --json).
import data_throughput
import grain

from data_pipeline import processes, sampling, sources

T = 8
VARIANTS = (
    ("decord, in thread", "decord", 0.0),
    ("decord, decoder process", "decord", 60.0),
    ("pyav, in thread", "pyav", 0.0),
    ("pyav, decoder process", "pyav", 60.0),
)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_decode(source, seconds: float, slice_s: float = 0.5) -> dict:
    decoders = {
        name: processes.VideoDecoder(backend, timeout) for name, backend, timeout in VARIANTS
    }
    counter = iter(range(10**9))

    def step(decoder):
        g = next(counter)
        rng = np.random.default_rng([0, g])
        record = source[g % len(source)]
        sources.load_clip(record, lambda f: sampling.train_indices(f, T, rng), decode_video=decoder)

    for decoder in decoders.values():
        step(decoder)  # Start the decoder processes; warm the file cache.
    totals = {name: [0, 0.0, 0.0] for name in decoders}  # clips, wall s, CPU s
    while min(wall for _, wall, _ in totals.values()) < seconds:
        for name, decoder in decoders.items():
            pid = decoder.decoder_pid()
            items, t0 = 0, time.perf_counter()
            c0 = time.process_time() + (_cpu_seconds(pid) if pid else 0.0)
            while True:
                step(decoder)
                items += 1
                if time.perf_counter() - t0 >= slice_s:
                    break
            total = totals[name]
            total[0] += items
            total[1] += time.perf_counter() - t0
            total[2] += time.process_time() + (_cpu_seconds(pid) if pid else 0.0) - c0
    return {
        name: {"clips_per_s": n / wall, "cpu_ms_per_clip": 1e3 * cpu / n}
        for name, (n, wall, cpu) in totals.items()
    }


def measure_startup(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        process = processes._DecoderProcess(processes.MEMORY_LIMIT_MB)  # pylint: disable=protected-access
        times.append(time.perf_counter() - t0)
        process.close()
    return float(np.median(times))


class _MakeBatch(grain.transforms.Map):
    def map(self, index):
        video = np.full((8, T, 224, 224, 3), index % 251, np.uint8)  # [b, T, S, S, 3]
        return {"video": video, "label": np.arange(8, dtype=np.int32)}


def measure_transport(shared_memory: bool, seconds: float, workers: int = 2) -> dict:
    ds = grain.MapDataset.range(10**6).map(_MakeBatch()).to_iter_dataset()
    if not shared_memory:
        ds = grain.experimental.WithOptionsIterDataset(
            ds, grain.experimental.DatasetOptions(min_shm_size=sys.maxsize)
        )
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    iterator = iter(ds)
    try:
        next(iterator)  # Worker start-up.
        count, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds or count < 4:
            batch = next(iterator)
            if shared_memory:
                batch = {k: np.array(v) for k, v in batch.items()}
            count += 1
        del batch
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        iterator.close()
    return {"batches_per_s": count / wall, "cpu_ms_per_batch": 1e3 * cpu / count}


def main(argv) -> None:
    del argv
    seconds = data_throughput._SECONDS.value  # pylint: disable=protected-access
    media = data_throughput.make_media(
        data_throughput._WORKDIR.value,  # pylint: disable=protected-access
        data_throughput._NUM_VIDEOS.value,  # pylint: disable=protected-access
    )
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average_before": os.getloadavg(),
        "decoder_process_startup_s": measure_startup(),
        "decode": {},
    }
    for key in ("video_gop16", "video_gop250"):
        source = sources.open_source(media["sources"][key], root=media["root"])
        results["decode"][key] = measure_decode(source, seconds)
        print(key, json.dumps(results["decode"][key]), flush=True)
    results["transport"] = {
        "shared memory (grain's default), copied out": measure_transport(True, seconds),
        "pipe (pipeline)": measure_transport(False, seconds),
    }
    print("transport", json.dumps(results["transport"]), flush=True)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    if data_throughput._JSON.value:  # pylint: disable=protected-access
        with open(data_throughput._JSON.value, "w") as f:  # pylint: disable=protected-access
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
