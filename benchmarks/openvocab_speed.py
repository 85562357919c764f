r"""Cost of Open-VCLIP's two additions (neighbour-frame attention, the IWO train step) and of
FROSTER's train step beside Open-VCLIP's.

  python benchmarks/openvocab_speed.py [--cases=b16,demo] [--batch=1] [--demo_batch=32]
      [--frames=8] [--repeats=3] [--dtype=float32] [--no-train]
      [--train_steps=class_texts,openvclip,froster]

1. Forward: the image tower over the frames of a video (`ActionCLIP.encode_frames`, jitted) with
   `model.frame_stage=none` (the plain ViT) and `=neighbour` (keys and values of frames t+1,
   t−1, t in every block), same weights and input `[B, T, S, S, 3]`. Target: neighbour ≤ 1.3×.
2. Train step: the project's `train.train_step`, jitted as the loop does (state donated, context
   sharded), for the Open-VCLIP model (neighbour, mean_logits, frozen 28-template classifier,
   400 Kinetics classes) with `model.objective=class_texts` (a plain step) and
   `=weight_interpolation` (IWO: a second forward and backward at α·θ₀ + (1 − α)·θ).
   Target: IWO ≤ 2.2×.
3. FROSTER's train step (`configs/froster.py`'s model and objective: the same student with its
   residual projectors, the text tower trained on 2 of the 29 templates a step, the frozen
   teacher's forward at θ₀ under `stop_gradient`) beside Open-VCLIP's (the IWO step of 2.), same
   batch. Target (issue 17): FROSTER ≤ 1.5× Open-VCLIP. The class texts are the plain names
   (no descriptions file): the token table ends after the longest text (`prompts.trim_padding`;
   16 tokens for Kinetics-400's names), so "Name: description" texts, being longer, cost more.
   Its text side costs per step, not per video (2 × the classes' texts through the text tower,
   forward and backward, on every device): the ratio falls as the per-device batch grows, so
   read it at the recipe's (Open-VCLIP's original: 8 a GPU). Its train state is larger too: the
   text tower trains (AdamW moments), where Open-VCLIP's is frozen; the teacher adds none.

Each group is compiled first (ahead of time: XLA's cost analysis gives each program's FLOPs, the
ratio an accelerator whose matmuls dominate would see, and its memory analysis the compiled
footprint: argument + output + temporaries − aliased (the donated state), MiB), then timed
alternately (plain, new, plain, new, ...; the train steps all in turn) so that a change of
load on a shared machine hits all alike; the table gives medians and the ratios. `--repeats=0`
reports the FLOPs and memory alone.
Cases: `b16` (ViT-B/16 at 224², configs/openvclip.py:k400's and configs/froster.py:k400's model,
random weights) and `demo` (their `demo` configs' 4-layer ViT at 32²). Results:
docs/benchmarks.md.
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
from configs import froster, openvclip  # noqa: E402
from data_pipeline import labels as label_files  # noqa: E402

CASES = {"b16": "k400", "demo": "demo"}
RECIPES = {"openvclip": openvclip, "froster": froster}
# The train steps: name -> (recipe, config overrides). Open-VCLIP's is the IWO step.
TRAIN_STEPS = {
    "class_texts": ("openvclip", {"model__objective": "class_texts"}),
    "openvclip": ("openvclip", {"model__objective": "weight_interpolation"}),
    "froster": ("froster", {}),
}
# The rows of the train table: (baseline, new, label, target ratio).
TRAIN_PAIRS = (
    ("class_texts", "openvclip", "class_texts → IWO", 2.2),
    ("openvclip", "froster", "Open-VCLIP (IWO) → FROSTER", 1.5),
)


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="b16,demo")
    p.add_argument("--batch", type=int, default=1, help="videos per step (b16)")
    p.add_argument("--demo_batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=8, help="frames (b16; the demo uses 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--train_steps",
        default=",".join(TRAIN_STEPS),
        help="the train steps to compile and time (a row for each pair of them in TRAIN_PAIRS)",
    )
    args = p.parse_args()
    unknown = set(args.train_steps.split(",")) - set(TRAIN_STEPS)
    if unknown:
        p.error(f"--train_steps: unknown {sorted(unknown)}; choose from {list(TRAIN_STEPS)}")
    return args


def _config(case, args, recipe="openvclip", **fields):
    config = RECIPES[recipe].get_config(CASES[case])
    with config.unlocked():
        config.init.checkpoint = ""  # random weights: speed does not depend on them
        config.model.dtype = args.dtype
        if recipe == "openvclip":
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


def _memory(compiled):
    """XLA's memory analysis of a compiled program, MiB: its parts and the footprint."""
    m = compiled.memory_analysis()
    parts = {"argument": m.argument_size_in_bytes, "output": m.output_size_in_bytes,
             "temp": m.temp_size_in_bytes, "alias": m.alias_size_in_bytes}  # fmt: skip
    parts = {k: v / 2**20 for k, v in parts.items()}
    parts["total"] = parts["argument"] + parts["output"] + parts["temp"] - parts["alias"]
    return parts


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
    params = jax.jit(lambda k: actionclip.init_params(plans[0].model, k))(jax.random.key(1))
    fns, gflop, memory = [], [], []
    for p in plans:
        f = jax.jit(lambda prm, v, m=p.model: m.apply({"params": prm}, v, method=m.encode_frames))
        compiled = f.lower(params, video).compile()
        gflop.append(flops.compiled_flops(compiled) / 1e9)
        memory.append(_memory(compiled))
        fns.append(lambda f=compiled: f(params, video))
    t0 = time.perf_counter()
    (plain, neighbour), raw = _timed(fns, args.repeats)
    return _row(
        case,
        f"forward, {b} × {t} frames",
        "plain ViT → neighbour",
        1.3,
        (plain, neighbour),
        gflop,
        memory,
        raw,
        time.perf_counter() - t0,
    )


def _row(case, what, compared, target, seconds, gflop, memory, raw, total_s):
    """A table row comparing a baseline program (index 0) with a new one (index 1)."""
    return {"case": case, "what": what, "compared": compared, "target": target,
            "plain": seconds[0], "new": seconds[1], "ratio": seconds[1] / seconds[0],
            "gflop": gflop, "flop_ratio": gflop[1] / gflop[0], "memory": memory,
            "mem_ratio": memory[1]["total"] / memory[0]["total"], "raw": raw,
            "total_s": total_s}  # fmt: skip


def train_rows(case, args):
    """The train steps of `TRAIN_STEPS` on one batch, compiled, then timed in turn; a row for each
    pair of `TRAIN_PAIRS` whose steps ran."""
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
    names = [n for n in TRAIN_STEPS if n in args.train_steps.split(",")]
    fns, gflop, memory = [], {}, {}
    for name in names:
        recipe, fields = TRAIN_STEPS[name]
        plan = plan_lib.model_plan(_config(case, args, recipe, **fields), _names(case))
        state_plan = train.plan_train_state(plan, mesh, 1000)
        state = train.initial_state(plan, state_plan)
        context, shardings = train.train_context(plan, state_plan, mesh, state.params)
        step = train.jit_train_step(plan, state_plan, mesh, shardings)
        step = step.lower(state, batch, context).compile()
        gflop[name] = flops.compiled_flops(step) / 1e9
        memory[name] = _memory(step)
        holder = {"state": state}

        def run(step=step, holder=holder, context=context):
            holder["state"], metrics = step(holder["state"], batch, context)
            return metrics

        fns.append(run)
    t0 = time.perf_counter()
    medians, raw = _timed(fns, args.repeats)
    seconds = dict(zip(names, medians))
    raw = dict(zip(names, raw)) if raw else {}
    total_s = time.perf_counter() - t0
    return [
        _row(case, f"train step, batch {b} × {t} frames", compared, target,
             (seconds[old], seconds[new]), [gflop[old], gflop[new]],
             [memory[old], memory[new]], [raw.get(old), raw.get(new)], total_s)
        for old, new, compared, target in TRAIN_PAIRS
        if old in names and new in names
    ]  # fmt: skip


def main():
    args = _parse()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, dtype {args.dtype}")  # fmt: skip
    rows = []
    for case in [c for c in args.cases.split(",") if c]:
        rows.append(forward_row(case, args))
        print(rows[-1], flush=True)
        if args.train:
            for row in train_rows(case, args):
                rows.append(row)
                print(row, flush=True)
    print(
        "| case | measured | baseline → new (target) | baseline, s | new, s | time ratio "
        "| GFLOP baseline / new | FLOP ratio | compiled MiB baseline / new | memory ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['what']} | {r['compared']} (≤ {r['target']}×) | "
              f"{r['plain']:.3f} | {r['new']:.3f} | {r['ratio']:.2f}× | "
              f"{r['gflop'][0]:.1f} / {r['gflop'][1]:.1f} | {r['flop_ratio']:.2f}× | "
              f"{r['memory'][0]['total']:.1f} / {r['memory'][1]['total']:.1f} | "
              f"{r['mem_ratio']:.2f}× |")  # fmt: skip
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
