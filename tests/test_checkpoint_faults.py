"""Checkpoints that do not read back, configs that do not fit them, saves that fail.

In-process tests save the test model's initial state at two steps with the run's own
`Checkpointer`, damage the newest as disks and kills do (a truncated array file, an empty
metadata file, a missing tree metadata file, a cut data-iterator file) and restore. The
end-to-end tests run `python -m actionclip_jax.main` in subprocesses (train_helpers.py) and read
the last line of its output.
"""

import copy
import errno
import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
import train_helpers as h

from actionclip_jax import checkpointing, sharding, train
from actionclip_jax import plan as plan_lib
from data_pipeline import pipeline

# The session's persistent compilation cache, shared with the runs' subprocesses.
pytestmark = pytest.mark.usefixtures("shared_compile_cache")

STEPS_PER_EPOCH = 3  # the test config: 30 training videos, global batch 8


@pytest.fixture(scope="module")
def config(basetemp):
    return h.make_test_config(basetemp)


def _iterator(config, source, epoch=0):
    kwargs = train.train_data_kwargs(config, config.model.clip.image_resolution)
    return pipeline.make_train_iterator(
        source,
        batch_size=config.data.batch_size,
        start_position=epoch * STEPS_PER_EPOCH * config.data.batch_size,
        **kwargs,
    )


def _host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for (path, x), y in zip(la, lb):
        np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


@pytest.fixture(scope="module")
def saved(config, tmp_path_factory):
    """A workdir with checkpoints at steps 2 and 3 (different parameters), and what they hold."""
    workdir = tmp_path_factory.mktemp("saved_run")
    plan = plan_lib.make_plan(config, workdir)
    mesh = sharding.make_mesh()
    state_plan = train.plan_train_state(plan, mesh, STEPS_PER_EPOCH)
    state = train.initial_state(plan, state_plan)
    states = {2: state, 3: state.replace(params=jax.tree.map(lambda x: x + 1, state.params))}
    ckpt = checkpointing.Checkpointer(workdir, plan.config, plan.spec)
    it = _iterator(plan.config, plan.train_source)
    for step in (2, 3):
        ckpt.save(step, states[step], it, counters={"bad_samples_total": step})
    ckpt.close()
    return workdir, state_plan, {s: _host(x) for s, x in states.items()}


@pytest.fixture
def workdir(saved, tmp_path):
    copy_ = tmp_path / "run"
    shutil.copytree(saved[0], copy_)
    return copy_


def _largest_file(folder):
    return max((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate_state(workdir, step):
    f = _largest_file(workdir / "checkpoints" / str(step) / "state")
    os.truncate(f, f.stat().st_size // 2)


def _truncate_params(workdir, step):
    f = _largest_file(workdir / "checkpoints" / str(step) / "params")
    os.truncate(f, 100)


DAMAGE = {
    "truncated state file": _truncate_state,
    "empty meta/metadata": lambda w, s: (w / f"checkpoints/{s}/meta/metadata").write_text(""),
    "no tree metadata": lambda w, s: (w / f"checkpoints/{s}/state/_METADATA").unlink(),
    "cut data-iterator file": lambda w, s: (
        w / f"checkpoints/{s}/data/process_0-of-1.json"
    ).write_text("{"),
}


def _resume(config, workdir, state_plan):
    """What `train_and_evaluate` does: the plan's step, then the Checkpointer's restore."""
    plan = plan_lib.make_plan(config, workdir)
    ckpt = checkpointing.Checkpointer(workdir, plan.config, plan.spec)
    try:
        state, step, it, counters = ckpt.restore_or_keep(
            plan.resume_step,
            state_plan.abstract,
            state_plan.shardings,
            functools.partial(_iterator, plan.config, plan.train_source),
            STEPS_PER_EPOCH,
        )
        it.close()
    finally:
        ckpt.close()
    return plan, state, step, counters


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_newest_step_is_reported_once_moved_aside_and_the_step_before_restored(
    config, saved, workdir, damage, caplog
):
    _, state_plan, states = saved
    DAMAGE[damage](workdir, 3)
    with caplog.at_level(logging.WARNING):
        _, state, step, counters = _resume(config, workdir, state_plan)
    assert step == 2 and counters == {"bad_samples_total": 2}
    _assert_trees_equal(_host(state), states[2])
    # One line names the step's folder, the step and the cause.
    [line] = _warnings(caplog)
    assert str(workdir / "checkpoints" / "3") in line and "step 3" in line
    assert "Error" in line or "does not read" in line
    # Kept, not deleted: moved out of orbax's folder, with its files.
    [moved] = (workdir / checkpointing.DAMAGED_DIR).iterdir()
    assert moved.name.startswith("3-") and (moved / "params").is_dir()
    assert h.complete_steps(workdir) == [2]
    # The resumed run saves step 3 again (orbax refuses a step number that is on disk).
    ckpt = checkpointing.Checkpointer(workdir, config, None)
    ckpt.save(3, state, _iterator(config, plan_lib.make_plan(config, workdir).train_source))
    ckpt.close()
    assert h.complete_steps(workdir) == [2, 3]


def test_eval_only_restore_falls_back_and_says_which_step_it_read(config, saved, workdir, caplog):
    _, state_plan, states = saved
    _truncate_params(workdir, 3)
    plan = plan_lib.make_plan(config, workdir, mode="eval")
    assert plan.resume_step == 3
    ckpt = checkpointing.Checkpointer(workdir, plan.config, plan.spec)
    with caplog.at_level(logging.WARNING):
        params, step = ckpt.restore_params(3, state_plan.abstract.params)
    ckpt.close()
    assert step == 2
    _assert_trees_equal(_host(params), states[2].params)
    assert len(_warnings(caplog)) == 1 and "step 3" in _warnings(caplog)[0]


def test_no_intact_step_is_one_error_naming_each_cause_and_nothing_is_moved(
    config, saved, workdir
):
    _, state_plan, _ = saved
    for step in (2, 3):
        _truncate_params(workdir, step)
    with pytest.raises(checkpointing.CheckpointRestoreError) as err:
        _resume(config, workdir, state_plan)
    message = str(err.value)
    assert "\n" not in message and "step 3:" in message and "step 2:" in message
    assert "nothing was moved or deleted" in message
    assert h.complete_steps(workdir) == [2, 3]
    assert not (workdir / checkpointing.DAMAGED_DIR).exists()
    # Every step's metadata unreadable: the plan refuses too (no silent start from scratch).
    for step in (2, 3):
        (workdir / f"checkpoints/{step}/meta/metadata").write_text("")
    with pytest.raises(checkpointing.CheckpointRestoreError, match="no checkpoint in .* reads"):
        plan_lib.make_plan(config, workdir)


@pytest.mark.parametrize(
    "field, value",
    [("lr_mults", ()), ("freeze", "clip/visual/.*")],
)
def test_resume_whose_optimizer_tree_differs_names_the_config_field(
    config, saved, workdir, field, value
):
    other = copy.deepcopy(config)
    other.optim[field] = value
    plan = plan_lib.make_plan(other, workdir)
    state_plan = train.plan_train_state(plan, sharding.make_mesh(), STEPS_PER_EPOCH)
    with pytest.raises(checkpointing.CheckpointRestoreError) as err:
        _resume(other, workdir, state_plan)
    message = str(err.value)
    assert f"config field optim.{field} was" in message and "--workdir" in message
    assert h.complete_steps(workdir) == [2, 3]  # a config error moves nothing


# ----------------------------------------------------------------------------- failed saves


def _fail_finalising(monkeypatch, step: int, events: list):
    """Makes orbax's background finalisation of checkpoint `step` fail as a full disk does."""
    from orbax.checkpoint._src.path import atomicity  # pylint: disable=import-outside-toplevel

    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self):
        if self.get_final().name == str(step):
            events.append(("save failed", step))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.get()))
        return await original(self)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)


def test_failed_background_save_stops_the_run_before_results_cite_it(
    config, tmp_path, monkeypatch
):
    events = []
    _fail_finalising(monkeypatch, 2, events)
    to_global = pipeline.to_global

    def feeding(batch, mesh, spec=None):
        if batch["video"].ndim == 5:  # training batches (evaluation ones have a view axis)
            events.append(("step", None))
        return to_global(batch, mesh, spec)

    monkeypatch.setattr(pipeline, "to_global", feeding)
    workdir = tmp_path / "run"
    with pytest.raises(checkpointing.CheckpointSaveError) as err:
        train.train_and_evaluate(config, workdir)  # 6 steps; saves at 2, 3 (evaluated), 4, 6
    message = str(err.value)
    assert str(workdir / "checkpoints" / "2") in message
    assert "No space left on device" in message and "newest complete checkpoint: none" in message
    assert ("save failed", 2) in events
    # Nothing after the failure was saved or published: no checkpoint, no results citing one.
    assert h.complete_steps(workdir) == []
    assert not list(workdir.glob("eval_results*.json"))
    # At most the one step that ran while the failing save was still finishing; the step-3
    # evaluation's save then stops the run (without the check the run trains all 6 steps).
    assert sum(e[0] == "step" for e in events) <= 3


@pytest.mark.slow
def test_full_disk_fails_the_run_with_the_cause_as_last_line(basetemp, tmp_path):
    """A workdir on a 20 MB tmpfs: step 2's checkpoint (15 MB) fits, step 3's does not."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
            check=True, capture_output=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a small tmpfs here: {e}")
    try:
        workdir = mount / "run"
        log = tmp_path / "run.log"
        proc = h.start(basetemp, workdir, "--config.max_steps=3", log=log)
        rc = h.finish(proc)
        text = log.read_text(errors="replace")
        steps, results = h.complete_steps(workdir), list(workdir.glob("eval_results*.json"))
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    assert rc == 1, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("actionclip_jax: error: saving checkpoint step 3 to"), text[-5000:]
    assert "No space left on device" in last and "newest complete checkpoint: step 2" in last
    assert steps == [2] and results == []


# ---------------------------------------------------------------- end to end, last line of output


def _run_main(basetemp, workdir, *overrides):
    proc = subprocess.run(
        h.command(workdir, *overrides),
        cwd=h.REPO,
        env=h.run_env(basetemp),
        capture_output=True,
        text=True,
        timeout=h.RUN_TIMEOUT,
    )
    return proc.returncode, proc.stdout + proc.stderr, proc.stderr.strip().splitlines()[-1]


@pytest.fixture
def reference_copy(basetemp, tmp_path):
    """A copy of the session's reference run (checkpoints 2 and 3) to damage."""
    copy_ = tmp_path / "run"
    shutil.copytree(h.reference_run(basetemp), copy_)
    return copy_


@pytest.mark.slow
def test_main_resumes_past_a_damaged_newest_checkpoint_bit_identically(
    basetemp, reference_copy
):
    workdir = reference_copy
    _truncate_state(workdir, 3)
    rc, output, last = _run_main(basetemp, workdir, *h.REFERENCE_OVERRIDES)
    assert rc == 0, output[-5000:]
    assert "step 3 does not read" in output and "resumed from step 2" in output
    assert h.complete_steps(workdir) == [2, 3]
    [moved] = (workdir / checkpointing.DAMAGED_DIR).iterdir()
    assert moved.name.startswith("3-")
    reference = h.reference_run(basetemp)
    _assert_trees_equal(h.load_state(workdir, 3), h.load_state(reference, 3))
    assert h.eval_results(workdir)["checkpoint_step"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no intact step", "lr_mults changed"])
def test_main_restore_errors_are_the_last_line_of_output(basetemp, reference_copy, case):
    workdir = reference_copy
    overrides = list(h.REFERENCE_OVERRIDES)
    if case == "no intact step":
        for step in (2, 3):
            _truncate_params(workdir, step)
        want = "actionclip_jax: error: no checkpoint in"
    else:
        overrides.append("--config.optim.lr_mults=()")
        want = "actionclip_jax: error: checkpoint step 3"
    rc, output, last = _run_main(basetemp, workdir, *overrides)
    assert rc == 1
    assert last.startswith(want), output[-5000:]
    if case == "lr_mults changed":
        assert "config field optim.lr_mults was" in last
