"""benchmarks/device_speed.py: its `--tiny` run goes through every kind of row on the CPU (so the
prepared accelerator benchmark cannot rot), and the batch that fits is predicted from peaks."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import device_speed

GIB = 2**30


def test_tiny_run_measures_data_training_and_eval_and_says_what_it_skipped(tmp_path):
    out = tmp_path / "speed.json"
    report = device_speed.main(["--tiny", f"--workdir={tmp_path}", f"--json={out}"])
    rows = {device_speed._label(r): r for r in report["rows"]}
    data, train, evaluation = (
        rows["data"],
        rows["train b=2 remat off xla"],
        rows["eval b=2 remat off xla"],
    )
    for row in (data, train, evaluation):
        assert row["status"] == "ok", row
    assert data["videos_per_s"] > 0 and data["workers"] == 0
    assert train["videos_per_s"] == pytest.approx(2 * train["devices"] / train["step_s"])
    assert train["model_flops"] > 0 and train["tflops"] > 0 and np.isfinite(train["loss"])
    assert train["mfu"] is None  # a CPU has no peak rate
    assert evaluation["videos_per_s"] > 0 and evaluation["model_flops"] > 0
    cudnn = rows["train b=2 remat off cudnn"]
    assert cudnn["status"] == "skipped" and "NVIDIA GPU" in cudnn["reason"]
    largest = [r for r in report["rows"] if r.get("batch") == "max"]
    assert largest and all(r["status"] == "skipped" and "limit" in r["reason"] for r in largest)
    assert report["verdict"]["keeps_up"] in (True, False)
    assert len(json.loads(out.read_text())["rows"]) == len(report["rows"])


def _row(batch, remat, peak_gib):
    return dict(kind="train", batch=batch, remat=remat, status="ok", peak_bytes=peak_gib * GIB)


def test_largest_batch_is_predicted_from_the_measured_peaks():
    predict = device_speed.predict_max_batch
    # 2 GiB of state and 0.3125 GiB per video without remat.
    rows = [_row(32, "off", 12), _row(64, "off", 22), _row(128, "off", 42)]
    assert predict(rows, "off", 101 * GIB, cap=4096)[0] == 288  # (92.9 - 2) / 0.3125, by 32
    rows.append(_row(128, "nothing_saveable", 7))  # the state + 0.039 GiB per video
    assert predict(rows, "nothing_saveable", 101 * GIB, cap=4096)[0] == 2304
    assert predict(rows, "nothing_saveable", 101 * GIB, cap=1024)[0] == 1024
    # Nothing to predict: no limit (CPU), one point, or no batch above those measured.
    assert predict(rows, "off", None, cap=4096)[0] is None
    assert predict(rows[:1], "off", 101 * GIB, cap=4096)[0] is None
    assert predict(rows, "off", 40 * GIB, cap=4096)[0] is None


def test_a_gpu_run_compares_attention_fits_the_largest_batch_and_keeps_to_its_budget(monkeypatch):
    # The scheduling of a device run on a simulated GPU of 100 GiB: 2 GiB of state, 0.5 GiB per
    # video without remat and 20 GiB more above batch 128 (so the linear prediction misses once);
    # cuDNN 10 % faster; each case takes 60 s, eval 30 s.
    clock = {"now": 0.0}
    monkeypatch.setattr(device_speed.time, "perf_counter", lambda: clock["now"])

    def fake_run(case):
        seconds = 30.0 if case["kind"] == "eval" else 60.0
        clock["now"] += seconds
        row = dict(case, wall_s=seconds, backend="gpu", device_kind="NVIDIA H200", devices=1)
        if case["kind"] == "data":
            return dict(row, status="ok", videos_per_s=500.0, workers=16, cores=16,
                        content="synthetic smooth noise", jpeg_kb=20.0, randaug_n=2)  # fmt: skip
        per_video = 0.5 if case["remat"] == "off" else 0.05
        peak = (2 + per_video * case["batch"] + 20 * (case["batch"] > 128)) * GIB
        if peak > 100 * GIB:
            return dict(row, status="oom", reason="RESOURCE_EXHAUSTED")
        speed = 600.0 * (1.1 if case["attention"] == "cudnn" else 1.0)
        return dict(row, status="ok", videos_per_s=speed, peak_bytes=peak, bytes_limit=100 * GIB)

    monkeypatch.setattr(device_speed, "run_case", fake_run)
    options, _ = device_speed.parse_options(["--no-isolate", "--budget_s=500"])
    report = device_speed.run_all(options, log=lambda text: None)
    done = [(r["kind"], r.get("batch"), r.get("remat"), r.get("attention"), r["status"])
            for r in report["rows"]]  # fmt: skip
    assert done[:8] == [
        ("data", None, None, None, "ok"),
        ("train", 64, "off", "xla", "ok"),
        ("train", 64, "off", "cudnn", "ok"),
        ("train", 128, "off", "cudnn", "ok"),  # the faster implementation from here on
        ("train", 160, "off", "cudnn", "oom"),  # (92 - 2) / 0.5 = 180, in steps of 32
        ("train", 120, "off", "cudnn", "ok"),  # a quarter smaller
        ("eval", 128, "off", "cudnn", "ok"),
        ("train", 32, "off", "cudnn", "ok"),
    ]
    # 450 s spent: a 60-s case no longer fits, and the table says so; without a remat row
    # there is nothing to scale the largest remat batch from.
    assert len(report["rows"]) == 11
    assert all(r["status"] == "skipped" for r in report["rows"][8:])
    assert all("time budget" in r["reason"] for r in report["rows"][8:10])
    assert "no measured row with remat" in report["rows"][10]["reason"]
    assert report["verdict"]["keeps_up"] is False and report["verdict"]["ratio"] < 1
    assert "the bottleneck" in device_speed.table(report)
