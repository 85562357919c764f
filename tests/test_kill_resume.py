"""A run killed (SIGKILL) five times at random steps and resumed each time ends exactly where
an uninterrupted run does: same parameters and optimiser state, same count of unreadable
samples.

Both runs train the test model for 4 epochs (12 steps, checkpoints every 2) on the test data
with three training entries made unreadable (an empty file, half a video, a missing file), so
that `train/bad_samples_total`, which the checkpoint's metadata carries across a resume, is not
zero. They share the session's compilation cache and data (train_helpers.py).
"""

from pathlib import Path

import jax
import numpy as np
import pytest
import train_helpers as h

from actionclip_jax import checkpointing

KILLS = 5
SEED = 13  # of the kill steps
STEPS = 12  # 4 epochs of 3 steps
# Training-list lines replaced by unreadable entries (their labels kept).
BROKEN = {4: "broken/empty.mp4", 13: "broken/truncated.mp4", 22: "broken/missing.mp4"}


def _bad_data(basetemp):
    """A data folder: the test set's videos and lists, three training entries unreadable."""
    h.make_test_config(basetemp)  # generates the session's synthetic data if absent
    synthetic = Path(h.synthetic_root(basetemp))
    root = h.session_dirs(basetemp)["runs"] / "bad_samples_data"
    if not root.exists():
        (root / "broken").mkdir(parents=True)
        (root / "videos").symlink_to(synthetic / "videos")
        for name in ("val.txt", "labels.csv"):
            (root / name).write_text((synthetic / name).read_text())
        lines = (synthetic / "train.txt").read_text().splitlines()
        (root / "broken" / "empty.mp4").write_bytes(b"")
        clip = (synthetic / lines[0].split()[0]).read_bytes()
        (root / "broken" / "truncated.mp4").write_bytes(clip[: len(clip) // 2])
        for i, path in BROKEN.items():
            lines[i] = f"{path} {lines[i].split()[-1]}"
        (root / "train.txt").write_text("\n".join(lines) + "\n")
    return (
        "--config.data.synthetic.enabled=False",
        f"--config.data.root={root}",
        f"--config.data.train={root / 'train.txt'}",
        f"--config.data.val={root / 'val.txt'}",
        f"--config.data.labels={root / 'labels.csv'}",
        "--config.data.heldout=",
        "--config.data.kind=video",
        "--config.optim.epochs=4",
        "--config.eval_every_epochs=100",  # one evaluation, at the end
        "--config.data.workers=0",
    )


def _fed(record) -> int:
    """Training batches a run has fed so far (complete lines of its --record file)."""
    try:
        return Path(record).read_text().count("\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    basetemp = tmp_path_factory.getbasetemp()
    overrides = _bad_data(basetemp)
    base = h.session_dirs(basetemp)["runs"]
    reference = base / "uninterrupted_bad_samples"
    reference_log = h.run(basetemp, reference, *overrides)

    workdir = base / "killed_5_times"
    kill_steps = sorted(np.random.default_rng(SEED).choice(np.arange(1, STEPS), KILLS, False))
    kills = []
    for i, target in enumerate(kill_steps):
        resumed_from = max(h.complete_steps(workdir), default=0)
        record = f"{workdir}.{i}.batches.jsonl"
        at = max(int(target), resumed_from + 1)
        proc = h.start(basetemp, workdir, *overrides, log=f"{workdir}.{i}.log", record=record)
        try:
            # Killed as the batch of step `at` is fed (steps before it have run).
            killed = h.kill_when(proc, lambda: resumed_from + _fed(record) >= at)  # noqa: B023
        finally:
            h.reap(proc)
        kills.append((resumed_from, at, killed))
    final_log = h.run(basetemp, workdir, *overrides, log=f"{workdir}.final.log")
    return reference, reference_log, workdir, final_log, kills


def _bad_total(workdir, step=STEPS) -> int:
    return checkpointing.read_meta(workdir, step)["counters"]["bad_samples_total"]


def _logged_bad_total(log) -> float:
    values = [line.split("train/bad_samples_total=")[1].split(",")[0]
              for line in log.splitlines() if "train/bad_samples_total=" in line]  # fmt: skip
    return float(values[-1])


@pytest.mark.slow
def test_bad_sample_count_survives_kills_and_resumes(runs):
    reference, reference_log, workdir, final_log, kills = runs
    assert all(killed for _, _, killed in kills), kills
    assert _bad_total(reference) > 0
    assert _bad_total(workdir) == _bad_total(reference)
    assert _logged_bad_total(final_log) == _logged_bad_total(reference_log) == _bad_total(reference)


@pytest.mark.slow
def test_five_random_kills_and_resumes_end_bit_identical_to_an_uninterrupted_run(runs):
    reference, _, workdir, final_log, kills = runs
    assert len(kills) == KILLS and all(killed for _, _, killed in kills), kills
    assert any(resumed for resumed, _, _ in kills)  # later kills hit resumed runs
    assert "resumed from step" in final_log
    assert h.complete_steps(workdir)[-1] == h.complete_steps(reference)[-1] == STEPS
    have, want = h.load_state(workdir, STEPS), h.load_state(reference, STEPS)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(have), jax.tree.leaves(want)):
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))
    assert len(jax.tree.leaves(have)) == len(jax.tree.leaves(want))
    assert h.eval_results(workdir)["top1"] == h.eval_results(reference)["top1"]
