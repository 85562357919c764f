r"""The demo's accuracy over several seeds: the command behind README's demo figures.

  python benchmarks/demo_seeds.py --seeds=0,1,2 --workdir=/tmp/demo_seeds
  python benchmarks/demo_seeds.py --seeds=0,1,2 --workdir=/tmp/demo_seeds -- --config.model.head=transf

Runs README's first command (`python -m actionclip_jax.main --config=configs/demo.py`) once per
seed, one after the other, each in a fresh workdir, with `--config.seed=S` and whatever follows
`--`. The generated videos are cached between runs (data_pipeline/synthetic.py), so only the
first run's wall time includes generating them. Prints one row per seed (wall time, validation
and held-out top-1 and top-5), then the mean and min–max of each, as Markdown; `--json` also
writes them. A seed whose run fails is reported with its log's last line and counted out.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("val_top1", "val_top5", "heldout_top1", "heldout_top5", "wall_s")


def run_seed(seed: int, workdir: str, extra: list[str]) -> dict:
    run_dir = os.path.join(workdir, f"seed{seed}")
    if os.path.exists(run_dir):
        sys.exit(f"demo_seeds: error: {run_dir} exists; pass an empty --workdir (a run there would "
                 "resume instead of training from scratch)")  # fmt: skip
    os.makedirs(workdir, exist_ok=True)
    log = os.path.join(workdir, f"seed{seed}.log")
    cmd = [sys.executable, "-m", "actionclip_jax.main", "--config=configs/demo.py",
           f"--workdir={run_dir}", f"--config.seed={seed}", *extra]  # fmt: skip
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
    row = {"seed": seed, "wall_s": time.perf_counter() - t0, "log": log}
    if rc.returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().strip().splitlines() or [""]
        return dict(row, error=f"exit {rc.returncode}: {lines[-1]}")
    for split, name in (("val", "eval_results.json"), ("heldout", "eval_results_heldout.json")):
        with open(os.path.join(run_dir, name), encoding="utf-8") as f:
            results = json.load(f)
        row[f"{split}_top1"], row[f"{split}_top5"] = results["top1"], results["top5"]
    return row


def summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    return {
        m: {"mean": statistics.fmean(r[m] for r in ok), "min": min(r[m] for r in ok),
            "max": max(r[m] for r in ok)}  # fmt: skip
        for m in METRICS
    } if ok else {}


def table(report: dict) -> str:
    def pct(x):
        return f"{100 * x:.1f}"

    lines = [
        f"demo_seeds {report['date']}: {report['machine']}; extra flags: "
        f"{' '.join(report['extra']) or 'none'}",
        "",
        "| seed | val top-1 % | val top-5 % | held-out top-1 % | held-out top-5 % | wall |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['seed']} | failed: {r['error']} | | | | {r['wall_s']:.0f} s |")
            continue
        lines.append(f"| {r['seed']} | {pct(r['val_top1'])} | {pct(r['val_top5'])} | "
                     f"{pct(r['heldout_top1'])} | {pct(r['heldout_top5'])} | {r['wall_s']:.0f} s |")  # fmt: skip
    s = report["summary"]
    if s:
        cells = [f"{pct(s[m]['mean'])} ({pct(s[m]['min'])}–{pct(s[m]['max'])})" for m in METRICS[:4]]
        wall = s["wall_s"]
        lines.append(f"| mean (min–max) | {' | '.join(cells)} | "
                     f"{wall['mean']:.0f} s ({wall['min']:.0f}–{wall['max']:.0f}) |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated config.seed values")
    p.add_argument("--workdir", required=True, help="an empty directory for the runs")
    p.add_argument("--json", default=None, help="also write the report here")
    p.add_argument("extra", nargs="*", help="flags for every run, after --")
    o = p.parse_args(argv)
    seeds = [int(s) for s in o.seeds.split(",") if s.strip()]
    uname = platform.uname()
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{uname.machine}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the start, Python {platform.python_version()}",
        "extra": o.extra,
        "rows": [],
    }
    for seed in seeds:
        row = run_seed(seed, o.workdir, o.extra)
        report["rows"].append(row)
        print(f"seed {seed}: {row.get('error') or 'ok'} ({row['wall_s']:.0f} s)", flush=True)
    report["summary"] = summary(report["rows"])
    print(table(report))
    if o.json:
        with open(o.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
