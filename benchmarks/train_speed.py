r"""Training-step speed and compiled memory of the real `train_step`, on synthetic uint8 batches.

  python benchmarks/train_speed.py                        # everything (tens of minutes on a CPU)
  python benchmarks/train_speed.py --cases=demo --no-memory
  python benchmarks/train_speed.py --cases=b16 --batch=4 --dtypes=float32
  python benchmarks/train_speed.py --cases= --memory      # only the memory report

Speed: `actionclip_jax.train.train_step`, jitted as `train_and_evaluate` does (same shardings, the
state donated), on batches shaped like the pipeline's (`video` uint8 `[B, T, S, S, 3]`, `label`
int32, `index` int64, `mask` bool, `bad` int32) but random, so no data is read: this times the
device work alone (on-device augmentation, forward, backward, AdamW update). Cases:
- `demo`: configs/demo.py's model (4-layer ViT at 32², 3-layer text tower), batch 32, 8 frames;
- `b32`, `b16`: ViT-B/32 and ViT-B/16 (configs/k400_b32.py, k400_b16.py, random weights: speed
  does not depend on them), 8 frames at 224², `transf` head, 16 templates × 400 Kinetics classes,
  batch `--batch` (small: on a CPU one step of B/16 at batch 2 already takes tens of seconds).
Each case is compiled once (first call, reported as "compile + 1st"), then timed `--repeats`
times; the table gives the median step time and videos/s = batch / median.

Memory (`--memory`): `jax.jit(train_step).lower(...).compile().memory_analysis()` for ViT-B/16,
8 frames, per-device batch `--memory_batch` (32), bf16 compute, with and without `model.remat`.
The state and batch are abstract (`jax.ShapeDtypeStruct`), so nothing is allocated; the numbers
are XLA's estimate for the backend that compiles, not a measurement. "total" = arguments +
outputs + temporaries − aliased (the donated state reused for the new one). XLA's cost analysis
gives the FLOPs of one step per device, from which accelerator step times can be projected.
- `--memory_platforms=cpu` compiles with this host's XLA:CPU. It drops the optimisation
  barriers that keep remat's recomputation in the backward pass (it then merges or schedules the
  recomputation early), so its remat rows show the extra FLOPs but no memory saving, and it
  lays out and fuses bf16 differently from an accelerator: a rough upper bound at best.
- `--memory_platforms=tpu` compiles ahead of time for a TPU topology (`--tpu_topology`, e.g.
  `v5e:2x2`, `v5p:2x2x1`) on a machine without a TPU. It needs `libtpu`, the version `jax[tpu]`
  pins for the installed jax, e.g. without touching the environment:
      pip install --no-deps --target /tmp/libtpu libtpu==0.0.42.1   # jax 0.10.2
      PYTHONPATH=/tmp/libtpu python benchmarks/train_speed.py --cases= --memory_platforms=tpu
  (libtpu warns that it cannot find TPU metadata; compiling still works). XLA:TPU
  rematerialises on its own when a program does not fit the chip's HBM, so a "remat off" row
  near a small chip's capacity (v5e: 16 GiB) already includes the compiler's recomputation
  (its FLOPs show it); compile for a larger chip (v5p: 95 GiB) to see the full need.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from actionclip_jax import plan as plan_lib  # noqa: E402
from actionclip_jax import sharding, train  # noqa: E402
from configs import demo as demo_config  # noqa: E402
from configs import k400_b16, k400_b32  # noqa: E402
from configs import test as test_config  # noqa: E402
from data_pipeline import labels as label_files  # noqa: E402
from data_pipeline import pipeline  # noqa: E402

GIB = 2**30
CASES = {"tiny": test_config, "demo": demo_config, "b32": k400_b32, "b16": k400_b16}
NAMES = {
    "tiny": "tiny (1-layer ViT-64, 32²)",
    "demo": "demo (4-layer ViT, 32²)",
    "b32": "ViT-B/32, 224²",
    "b16": "ViT-B/16, 224²",
}


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="demo,b32,b16", help="comma-separated: tiny, demo, b32, b16")
    p.add_argument("--batch", type=int, default=2, help="batch of the b32 / b16 cases")
    p.add_argument("--demo_batch", type=int, default=32)
    p.add_argument("--dtypes", default="float32,bfloat16", help="compute dtypes of b32 / b16")
    p.add_argument("--demo_dtypes", default="float32", help="compute dtypes of the demo")
    p.add_argument("--repeats", type=int, default=3, help="timed steps after compilation")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--memory_batch", type=int, default=32, help="per-device batch (memory)")
    p.add_argument("--memory_dtypes", default="bfloat16")
    p.add_argument(
        "--memory_platforms",
        default="cpu",
        help="comma-separated: cpu (this host's compiler) and/or tpu (ahead-of-time compile for "
        "--tpu_topology with libtpu, no TPU needed; see the module docstring)",
    )
    p.add_argument("--tpu_topology", default="v5e:2x2", help="TPU kind and chips for --memory")
    p.add_argument(
        "--memory_devices", type=int, default=1, help="devices of the data axis (memory report)"
    )
    p.add_argument(
        "--memory_fsdp",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also report sharding.fsdp=True (with --memory_devices > 1)",
    )
    p.add_argument("--frames", type=int, default=8)
    return p.parse_args()


# ------------------------------------------------------------------------------------ set-up


def make_config(case: str, batch: int, dtype: str, frames: int, remat: bool = False, **model):
    """The case's config with random weights; `model` overrides `config.model` fields."""
    config = CASES[case].get_config()
    with config.unlocked():
        config.init.checkpoint = ""  # random weights: the speed does not depend on them
        config.data.batch_size = batch
        config.data.num_frames = frames
        config.model.dtype = dtype
        config.model.remat = remat
        for field, value in model.items():
            config.model[field] = value
    return config


def class_names(case: str) -> list[str]:
    """Kinetics-400's names, or generic ones for the demo and tiny models (their 16 templates
    come from the config: the text table is `[16, C, L]`)."""
    if case in ("demo", "tiny"):
        return [f"shape {i} moving" for i in range(48)]
    return label_files.read_labels(label_files.resolve_label_file("kinetics400"))


def run_plan(config, case: str, mesh, steps_per_epoch: int = 1000):
    """`(plan, state plan, jitted train step)` of a random model: the loop's own, no data."""
    plan = plan_lib.model_plan(config, class_names(case))
    state_plan = train.plan_train_state(plan, mesh, steps_per_epoch)
    return plan, state_plan, train.jit_train_step(plan, state_plan, mesh)


def synthetic_batch(batch: int, frames: int, size: int, num_classes: int, seed: int = 0):
    """A batch with the pipeline's keys and dtypes (random pixels and labels)."""
    rng = np.random.default_rng(seed)
    return {
        "video": rng.integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8),
        "label": rng.integers(0, num_classes, batch).astype(np.int32),
        "index": np.arange(batch, dtype=np.int64),
        "mask": np.ones(batch, bool),
        "bad": np.zeros(batch, np.int32),
    }


def count_params(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


# ------------------------------------------------------------------------------------- speed


def bench_speed(case: str, batch: int, dtype: str, frames: int, repeats: int) -> dict:
    config = make_config(case, batch, dtype, frames)
    mesh = sharding.make_mesh()
    plan, state_plan, step = run_plan(config, case, mesh)
    state = train.initial_state(plan, state_plan)
    size = plan.model.clip_sizes["image_resolution"]
    context = jax.device_put(
        plan.objective.train_context(plan.class_names), sharding.replicated(mesh)
    )
    batch_np = synthetic_batch(batch, frames, size, len(plan.class_names))
    n_params = count_params(state.params)

    def run(state):
        state, metrics = step(state, pipeline.to_global(batch_np, mesh), context)
        jax.block_until_ready((state, metrics))
        return state, metrics

    t0 = time.perf_counter()
    state, metrics = run(state)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = run(state)
        times.append(time.perf_counter() - t0)
    loss = float(metrics["loss"])
    if not np.isfinite(loss):
        raise FloatingPointError(f"{case} {dtype}: the loss is {loss}")
    median = statistics.median(times)
    del state
    return dict(
        case=case,
        dtype=dtype,
        batch=batch,
        size=size,
        params=n_params,
        first=first,
        median=median,
        spread=(min(times), max(times)),
        videos_per_s=batch / median,
    )


def print_speed(rows, frames, repeats):
    print(
        f"\ntrain_step (jit, donated state), {frames} frames, synthetic uint8 batches, "
        f"backend {jax.default_backend()} ({jax.device_count()} device, {os.cpu_count()} cores); "
        f"median of {repeats} steps after compilation"
    )
    print(
        f"| {'model':<26} | {'params':>7} | {'compute':>8} | {'batch':>5} "
        f"| {'compile + 1st s':>15} | {'step s (median)':>15} | {'min–max s':>13} "
        f"| {'videos/s':>8} |"
    )
    print(
        f"|{'-' * 28}|{'-' * 9}|{'-' * 10}|{'-' * 7}|{'-' * 17}|{'-' * 17}|{'-' * 15}|{'-' * 10}|"
    )
    for r in rows:
        spread = f"{r['spread'][0]:.3f}–{r['spread'][1]:.3f}"
        print(
            f"| {NAMES[r['case']]:<26} | {r['params'] / 1e6:>6.1f}M | {r['dtype']:>8} "
            f"| {r['batch']:>5} | {r['first']:>15.2f} | {r['median']:>15.3f} | {spread:>13} "
            f"| {r['videos_per_s']:>8.2f} |"
        )


# ------------------------------------------------------------------------------------ memory


def memory_mesh(platform: str, devices: int, tpu_topology: str) -> Mesh:
    """A `data` mesh of `devices` devices: this host's, or those of a TPU topology (no TPU)."""
    if platform == "cpu":
        found = jax.devices("cpu")
    elif platform == "tpu":
        from jax.experimental import topologies  # pylint: disable=import-outside-toplevel

        found = topologies.get_topology_desc(platform="tpu", topology_name=tpu_topology).devices
    else:
        raise SystemExit(f"unknown memory platform {platform!r}: cpu or tpu")
    if len(found) < devices:
        raise SystemExit(f"{platform}: {len(found)} devices, --memory_devices={devices}")
    return Mesh(np.array(found[:devices]), (sharding.DATA,))


def memory_report(mesh, batch: int, dtype: str, remat: bool, fsdp: bool, frames: int) -> dict:
    """XLA's memory estimate of one ViT-B/16 train step; `batch` is per device."""
    n = mesh.shape[sharding.DATA]
    config = make_config("b16", batch * n, dtype, frames, remat=remat)
    with config.unlocked():
        config.sharding.fsdp = fsdp
    plan, state_plan, step = run_plan(config, "b16", mesh)
    size = plan.model.clip_sizes["image_resolution"]
    bs = sharding.batch_sharding(mesh)
    b = batch * n
    batch_abs = {
        "video": jax.ShapeDtypeStruct((b, frames, size, size, 3), jnp.uint8, sharding=bs),
        "label": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=bs),
        # int64 becomes int32 on the device unless jax_enable_x64 is set, as in the loop.
        "index": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=bs),
        "mask": jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=bs),
        "bad": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=bs),
    }
    context_abs = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding.replicated(mesh)),
        plan.objective.train_context(plan.class_names),
    )
    t0 = time.perf_counter()
    compiled = step.lower(state_plan.abstract, batch_abs, context_abs).compile()
    seconds = time.perf_counter() - t0
    m = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    total = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )
    return dict(
        platform=mesh.devices.flat[0].device_kind if mesh.devices.size else "?",
        devices=n,
        dtype=dtype,
        remat=remat,
        fsdp=fsdp,
        batch=batch,
        temp=m.temp_size_in_bytes,
        argument=m.argument_size_in_bytes,
        output=m.output_size_in_bytes,
        alias=m.alias_size_in_bytes,
        total=total,
        flops=flops,  # per device
        compile_s=seconds,
    )


def print_memory(rows, frames):
    print(
        f"\nCompiled memory of train_step per device, ViT-B/16 + transf, {frames} frames at 224², "
        f"per-device batch {rows[0]['batch']}, AdamW with fp32 master weights "
        "(XLA's estimate for the compiling backend; GiB)"
    )
    head = (
        f"| {'compiled for':<16} | {'dev':>3} | {'compute':>8} | {'remat':>5} | {'fsdp':>4} "
        f"| {'temp':>6} | {'argument':>8} | {'output':>6} | {'alias':>6} | {'total':>6} "
        f"| {'≤ 16 GiB':>8} | {'TFLOP/step/dev':>14} | {'compile s':>9} |"
    )
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        fits = "yes" if r["total"] <= 16 * GIB else "no"
        print(
            f"| {r['platform'][:16]:<16} | {r['devices']:>3} | {r['dtype']:>8} "
            f"| {'on' if r['remat'] else 'off':>5} | {'on' if r['fsdp'] else 'off':>4} "
            f"| {r['temp'] / GIB:>6.2f} | {r['argument'] / GIB:>8.2f} | {r['output'] / GIB:>6.2f} "
            f"| {r['alias'] / GIB:>6.2f} | {r['total'] / GIB:>6.2f} | {fits:>8} "
            f"| {r['flops'] / 1e12:>14.2f} | {r['compile_s']:>9.1f} |"
        )
    print(
        "total = argument + output + temp - alias (the donated state is aliased to the new one). "
        "XLA:CPU drops remat's optimisation barriers, so its remat rows show no saving; compile "
        "for tpu to see remat's effect."
    )


def main():
    args = _parse()
    print(f"jax {jax.__version__}, devices: {jax.devices()}")
    rows = []
    for case in [c for c in args.cases.split(",") if c]:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; choose from {sorted(CASES)}")
        dtypes = args.demo_dtypes if case == "demo" else args.dtypes
        batch = args.demo_batch if case == "demo" else args.batch
        for dtype in [d for d in dtypes.split(",") if d]:
            r = bench_speed(case, batch, dtype, args.frames, args.repeats)
            print(
                f"  {case} {dtype} batch {batch}: {r['median']:.3f} s/step, "
                f"{r['videos_per_s']:.2f} videos/s (compile + 1st {r['first']:.1f} s)",
                flush=True,
            )
            rows.append(r)
    if rows:
        print_speed(rows, args.frames, args.repeats)
    if args.memory:
        mem = []
        for platform in [p for p in args.memory_platforms.split(",") if p]:
            mesh = memory_mesh(platform, args.memory_devices, args.tpu_topology)
            fsdps = (False, True) if args.memory_fsdp and args.memory_devices > 1 else (False,)
            for dtype in [d for d in args.memory_dtypes.split(",") if d]:
                for fsdp in fsdps:
                    for remat in (False, True):
                        r = memory_report(mesh, args.memory_batch, dtype, remat, fsdp, args.frames)
                        print(
                            f"  memory b16 {r['platform']} ×{r['devices']} {dtype} remat={remat} "
                            f"fsdp={fsdp}: total {r['total'] / GIB:.2f} GiB "
                            f"(compiled in {r['compile_s']:.0f} s)",
                            flush=True,
                        )
                        mem.append(r)
        print_memory(mem, args.frames)


if __name__ == "__main__":
    main()
