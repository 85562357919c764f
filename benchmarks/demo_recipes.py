r"""The demo's held-out accuracy of each recipe: ActionCLIP, ViFi-CLIP, Open-VCLIP, FROSTER.

  python benchmarks/demo_recipes.py [--recipes=actionclip,vificlip,openvclip,froster]
      [--seeds=0,1,2] [--base=/tmp/demo_recipes] [--keep_checkpoints]
      [--set=RECIPE:field=value ...]

Each (recipe, seed) is one complete `python -m actionclip_jax.main` run of the recipe's demo config
(`configs/demo.py`, `configs/vificlip.py:demo`, `configs/openvclip.py:demo`,
`configs/froster.py:demo`) with `--config.seed=SEED`, on the cached synthetic data, in
`BASE/<recipe>_s<seed>`; a run whose results are already there is not repeated. Recipes besides
the four: `openvclip_frozen` (Open-VCLIP's
own text side and test-time interpolation, r = 0.5, which the demo config turns off because the
demo has no pretrained CLIP; θ₀ is then the random initial weights). The table gives validation
top-1 and held-out top-1 (unseen colour-shape-motion pairings) per seed, their mean ± std
(population), and the wall time of each run. Checkpoints are deleted after a run (Open-VCLIP keeps
one per epoch) unless `--keep_checkpoints`. `--collect` runs nothing: it tabulates the runs
found under `--base` (also ones started by hand or by another instance of this script, whose wall
time is then read off the run's log and result files). Results: docs/benchmarks.md, "Open-vocabulary
recipes" (ActionCLIP's own runs: "Demo accuracy").
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPES = {
    "actionclip": ("configs/demo.py", ()),
    "vificlip": ("configs/vificlip.py:demo", ()),
    "openvclip": ("configs/openvclip.py:demo", ()),
    "froster": ("configs/froster.py:demo", ()),
    "openvclip_frozen": (
        "configs/openvclip.py:demo",
        ("--config.text.classifier=frozen", "--config.weight_space.interpolate=0.5"),
    ),
}


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default="actionclip,vificlip,openvclip")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--base", default="/tmp/demo_recipes")
    p.add_argument("--keep_checkpoints", action="store_true")
    p.add_argument("--set", action="append", default=[], help="RECIPE:field=value override")
    p.add_argument("--collect", action="store_true", help="tabulate existing runs only")
    return p.parse_args()


def _results(workdir):
    with open(os.path.join(workdir, "eval_results.json")) as f:
        val = json.load(f)
    with open(os.path.join(workdir, "eval_results_heldout.json")) as f:
        heldout = json.load(f)
    return val, heldout


def collected(recipe, seed, base):
    """A finished run's record, from its `run.json` or, for a run this script did not start, its
    result files (wall time: from its log's creation to its held-out results)."""
    workdir = os.path.join(base, f"{recipe}_s{seed}")
    done = os.path.join(workdir, "run.json")
    if os.path.exists(done):
        with open(done) as f:
            return json.load(f)
    held = os.path.join(workdir, "eval_results_heldout.json")
    if not os.path.exists(held):
        return None
    val, heldout = _results(workdir)
    log = os.path.join(workdir, "run.log")
    start = os.stat(log).st_ctime if os.path.exists(log) else float("nan")
    return {"recipe": recipe, "seed": seed, "wall_s": os.stat(held).st_mtime - start,
            "val_top1": val["top1"], "heldout_top1": heldout["top1"],
            "heldout_top5": heldout["top5"], "heldout_weights": heldout.get("weights", "")}


def run(recipe, seed, base, overrides, keep):
    config, extra = RECIPES[recipe]
    workdir = os.path.join(base, f"{recipe}_s{seed}")
    done = os.path.join(workdir, "run.json")
    found = collected(recipe, seed, base)
    if found is not None:
        return found
    cmd = [sys.executable, "-m", "actionclip_jax.main", f"--config={config}",
           f"--workdir={workdir}", f"--config.seed={seed}", *extra,
           *[f"--config.{o}" for o in overrides]]  # fmt: skip
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=REPO)
    t0 = time.time()
    with open(os.path.join(workdir, "run.log"), "w") as log:
        rc = subprocess.call(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    if rc:
        raise SystemExit(f"{recipe} seed {seed} failed ({rc}): see {workdir}/run.log")
    val, heldout = _results(workdir)
    out = {
        "recipe": recipe, "seed": seed, "config": config, "overrides": list(extra) + overrides,
        "wall_s": wall, "val_top1": val["top1"], "heldout_top1": heldout["top1"],
        "heldout_top5": heldout["top5"], "heldout_weights": heldout.get("weights", ""),
    }  # fmt: skip
    with open(done, "w") as f:
        json.dump(out, f, indent=2)
    if not keep:
        shutil.rmtree(os.path.join(workdir, "checkpoints"), ignore_errors=True)
    return out


def main():
    args = parse()
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = {}
    for item in args.set:
        recipe, _, field = item.partition(":")
        overrides.setdefault(recipe, []).append(field)
    recipes = args.recipes.split(",")
    # Seed-major, so that an interrupted sweep still has every recipe's first seeds.
    done = {r: [] for r in recipes}
    for s in seeds:
        for recipe in recipes:
            if args.collect:
                found = collected(recipe, s, args.base)
                if found is None:
                    continue
                done[recipe].append(found)
            else:
                done[recipe].append(
                    run(recipe, s, args.base, overrides.get(recipe, []), args.keep_checkpoints)
                )
            print(json.dumps(done[recipe][-1]), flush=True)
    rows = []
    for recipe, runs in done.items():
        if not runs:
            continue
        val = np.array([r["val_top1"] for r in runs]) * 100
        held = np.array([r["heldout_top1"] for r in runs]) * 100
        per_seed = lambda xs: " / ".join(f"{x:.1f}" for x in xs)  # noqa: E731
        rows.append(
            f"| {recipe} | {per_seed(val)} | {val.mean():.1f} ± {val.std():.1f}"
            f" | {per_seed(held)} | {held.mean():.1f} ± {held.std():.1f}"
            f" | {per_seed([r['wall_s'] / 60 for r in runs])} |"
        )
    print("| recipe | val top-1 per seed | mean ± std | held-out top-1 per seed | mean ± std "
          "| wall min per run |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
