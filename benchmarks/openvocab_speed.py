r"""Cost of Open-VCLIP's two additions: neighbour-frame attention and the IWO train step.

  python benchmarks/openvocab_speed.py [--cases=b16,demo] [--batch=1] [--frames=8] [--repeats=3]
      [--dtype=float32] [--no-train]

1. Forward: the image tower over the frames of a video (`ActionCLIP.encode_frames`, jitted) with
   `model.frame_stage=none` (the plain ViT) and `=neighbour` (keys and values of frames t+1,
   t−1, t in every block), same weights and input `[B, T, S, S, 3]`. Target: neighbour ≤ 1.3×.
2. Train step: the project's `train.train_step`, jitted as the loop does (state donated, context
   sharded), for the Open-VCLIP model (neighbour, mean_logits, frozen 28-template classifier,
   400 Kinetics classes) with `model.objective=class_texts` (a plain step) and
   `=weight_interpolation` (IWO: a second forward and backward at α·θ₀ + (1 − α)·θ).
   Target: IWO ≤ 2.2×.

Each pair is compiled first (ahead of time: XLA's cost analysis gives each program's FLOPs, the
ratio an accelerator whose matmuls dominate would see), then timed alternately (plain, new, plain,
new, ...) so that a change of load on a shared machine hits both alike; the table gives medians
and the ratios. `--repeats=0` reports the FLOPs alone.
Cases: `b16` (ViT-B/16 at 224², configs/openvclip.py:k400's model, random weights) and `demo`
(configs/openvclip.py:demo's 4-layer ViT at 32²). Results: docs/benchmarks.md.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from actionclip_jax import flops  # noqa: E402
from actionclip_jax import plan as plan_lib  # noqa: E402
from actionclip_jax import sharding, train  # noqa: E402
from actionclip_jax.models import actionclip  # noqa: E402
from configs import openvclip  # noqa: E402
from data_pipeline import labels as label_files  # noqa: E402

CASES = {"b16": "k400", "demo": "demo"}


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="b16,demo")
    p.add_argument("--batch", type=int, default=1, help="videos per step (b16)")
    p.add_argument("--demo_batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=8, help="frames (b16; the demo uses 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=True)
    return p.parse_args()


def _config(case, args, **fields):
    config = openvclip.get_config(CASES[case])
    with config.unlocked():
        config.init.checkpoint = ""  # random weights: speed does not depend on them
        config.model.dtype = args.dtype
        config.text.classifier = "frozen"  # Open-VCLIP's (the demo config trains it)
        if case == "b16":
            config.data.num_frames = args.frames
            config.data.batch_size = args.batch
        else:
            config.data.batch_size = args.demo_batch
        for k, v in fields.items():
            section, name = k.split("__")
            config[section][name] = v
    return config


def _names(case):
    if case == "demo":
        return [f"a shape {i} moving" for i in range(48)]
    return label_files.read_labels(label_files.resolve_label_file("kinetics400"))


def _timed(fns, repeats):
    """Median seconds of each no-argument function, called alternately after one warm call."""
    if not repeats:
        return [float("nan")] * len(fns), []
    for fn in fns:
        jax.block_until_ready(fn())
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times], times


def forward_row(case, args):
    config = _config(case, args)
    b, t = config.data.batch_size, config.data.num_frames
    plans = [plan_lib.model_plan(_config(case, args, model__frame_stage=s), _names(case))
             for s in ("none", "neighbour")]  # fmt: skip
    r = plans[0].model.clip_sizes["image_resolution"]
    video = jax.random.normal(jax.random.key(0), (b, t, r, r, 3), plans[0].model.dtype)
    params = jax.jit(lambda k: actionclip.init_params(plans[0].model, k))(
        jax.random.key(1)
    )
    fns, gflop = [], []
    for p in plans:
        f = jax.jit(lambda prm, v, m=p.model: m.apply({"params": prm}, v, method=m.encode_frames))
        compiled = f.lower(params, video).compile()
        gflop.append(flops.compiled_flops(compiled) / 1e9)
        fns.append(lambda f=compiled: f(params, video))
    t0 = time.perf_counter()
    (plain, neighbour), raw = _timed(fns, args.repeats)
    return {"case": case, "what": f"forward, {b} × {t} frames", "plain": plain, "new": neighbour,
            "ratio": neighbour / plain, "gflop": gflop, "flop_ratio": gflop[1] / gflop[0],
            "raw": raw, "total_s": time.perf_counter() - t0}  # fmt: skip


def train_row(case, args):
    mesh = sharding.make_mesh()
    config = _config(case, args)
    b, t = config.data.batch_size, config.data.num_frames
    r = config.model.clip.image_resolution
    rng = np.random.default_rng(0)
    batch = {
        "video": jnp.asarray(rng.integers(0, 256, (b, t, r, r, 3), dtype=np.uint8)),
        "label": jnp.asarray(rng.integers(0, len(_names(case)), b).astype(np.int32)),
        "index": jnp.arange(b, dtype=jnp.int64),
        "mask": jnp.ones(b, bool),
        "bad": jnp.zeros(b, jnp.int32),
    }
    batch = jax.device_put(batch, sharding.batch_sharding(mesh))
    fns, gflop = [], []
    for objective in ("class_texts", "weight_interpolation"):
        plan = plan_lib.model_plan(_config(case, args, model__objective=objective), _names(case))
        state_plan = train.plan_train_state(plan, mesh, 1000)
        state = train.initial_state(plan, state_plan)
        context, shardings = train.train_context(plan, state_plan, mesh, state.params)
        step = train.jit_train_step(plan, state_plan, mesh, shardings)
        step = step.lower(state, batch, context).compile()
        gflop.append(flops.compiled_flops(step) / 1e9)
        holder = {"state": state}

        def run(step=step, holder=holder, context=context):
            holder["state"], metrics = step(holder["state"], batch, context)
            return metrics

        fns.append(run)
    t0 = time.perf_counter()
    (plain, iwo), raw = _timed(fns, args.repeats)
    return {"case": case, "what": f"train step, batch {b} × {t} frames", "plain": plain,
            "new": iwo, "ratio": iwo / plain, "gflop": gflop, "flop_ratio": gflop[1] / gflop[0],
            "raw": raw, "total_s": time.perf_counter() - t0}  # fmt: skip


def main():
    args = _parse()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, dtype {args.dtype}")  # fmt: skip
    rows = []
    for case in [c for c in args.cases.split(",") if c]:
        rows.append(forward_row(case, args))
        print(rows[-1], flush=True)
        if args.train:
            rows.append(train_row(case, args))
            print(rows[-1], flush=True)
    print("| case | measured | plain / class_texts, s | neighbour / IWO, s | time ratio "
          "| GFLOP plain / new | FLOP ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['what']} | {r['plain']:.3f} | {r['new']:.3f} | "
              f"{r['ratio']:.2f}× | {r['gflop'][0]:.1f} / {r['gflop'][1]:.1f} | "
              f"{r['flop_ratio']:.2f}× |")  # fmt: skip
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
