"""Evaluation protocols: shipped splits against their labels, subsets, view averaging, reports."""
# pylint: disable=redefined-outer-name

import collections
import csv
import functools
import importlib
import io
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from actionclip_jax import plan as plan_lib
from actionclip_jax import scoring, splits
from actionclip_jax.evals import evaluator, protocols
from actionclip_jax.evals import reports as report
from configs import base as base_config
from data_pipeline import labels, sources
from data_pipeline import splits as lists

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ------------------------------------------------------------------------------ shipped lists


def test_every_shipped_list_has_a_builtin_name():
    shipped = {
        os.path.relpath(os.path.join(d, f), lists.splits_dir())
        for d, _, files in os.walk(lists.splits_dir())
        for f in files
        if f.endswith(".txt")
    }
    assert shipped == {rel for rel, _ in lists.BUILTIN_LISTS.values()}
    assert len(shipped) == 34


def test_resolve_list():
    path = lists.resolve_list("ucf101/val1")
    assert os.path.isfile(path) and path.endswith(os.path.join("ucf_splits", "val1.txt"))
    assert lists.resolve_list("ucf_splits/val1.txt") == path
    assert lists.resolve_list(path) == path  # idempotent
    assert lists.resolve_list("data/k400/val.txt") == "data/k400/val.txt"
    assert lists.resolve_list("") == ""
    assert lists.list_label_set("hmdb51/base2novel/novel_val") == "hmdb51_novel"


_UCF = re.compile(r"v_(?P<cls>[A-Za-z]+)_g\d+_c\d+\.avi")
_HMDB_TAGS = re.compile(r"_[fhlu]_(?:cm|nm)_np\d+_(?:fr|ba|le|ri)_(?:goo|med|bad)_\d+\.avi$")


def _class_in_name(dataset, file_name, class_names):
    """The class a UCF101 / HMDB51 file name carries (the longest class that fits)."""
    if dataset == "ucf101":
        m = _UCF.fullmatch(file_name)
        assert m, file_name
        return m["cls"]
    prefix = "_" + _HMDB_TAGS.split(file_name)[0]
    fits = [c.replace(" ", "_") for c in class_names]
    fits = [c for c in fits if prefix.endswith("_" + c)]
    assert fits, file_name
    return max(fits, key=len)


@pytest.mark.parametrize("name", sorted(lists.BUILTIN_LISTS))
def test_shipped_list_lines_match_their_labels(name):
    path = lists.resolve_list(name)
    label_set = lists.list_label_set(name)
    names = labels.read_labels(label_set)
    records, _ = sources.parse_list_file(path, num_classes=len(names))
    assert len({r["path"] for r in records}) == len(records), "a video listed twice"
    dataset = name.split("/")[0]
    if dataset in ("ucf101", "hmdb51"):
        spelled = collections.Counter()
        for r in records:
            carried = _class_in_name(dataset, r["path"], names)
            expected = names[r["label"]]
            # Case and underscores folded; UCF101's file names spell HandstandPushups
            # "HandStandPushups", the only difference beyond that.
            assert lists.normalise_class_name(carried) == (
                lists.normalise_class_name(expected).replace(" ", "")
                if dataset == "ucf101"
                else lists.normalise_class_name(expected)
            ), f"{path}: {r['path']} carries {carried!r}, labelled {expected!r}"
            if carried != expected.replace(" ", "_"):
                spelled[(carried, expected)] += 1
        assert set(spelled) <= {("HandStandPushups", "HandstandPushups")}
    counts = collections.Counter(r["label"] for r in records)
    m = re.search(r"few_shot_(\d+)$|fs_base_s\d_train$", name)
    if m:  # K-shot lists: exactly K videos of every class
        k = int(m[1]) if m[1] else 16
        assert set(counts) == set(range(len(names))) and set(counts.values()) == {k}
    elif "/val" in name or name.endswith("_val") or "zero_shot" in name:
        assert set(counts) == set(range(len(names))), "a test list misses classes"


def test_hmdb51_label_order_is_the_sorted_folder_order():
    names = labels.read_labels("hmdb51")
    assert names == sorted(names, key=lambda n: n.replace(" ", "_"))
    assert [names[i] for i in (20, 21, 44, 45)] == ["kick", "kick ball", "sword", "sword exercise"]


@pytest.mark.parametrize(
    "train,test",
    [
        ("ucf101/train1_few_shot_16", "ucf101/val1"),
        ("hmdb51/train1_few_shot_16", "hmdb51/val1"),
        ("ucf101/base2novel/fs_base_s1_train", "ucf101/base2novel/base_val"),
        ("hmdb51/base2novel/base_train", "hmdb51/base2novel/base_val"),
        ("kinetics400/base2novel/fs_base_s3_train", "kinetics400/base2novel/base_val"),
    ],
)
def test_training_and_test_lists_are_disjoint(train, test):
    def videos(name):
        text = pathlib.Path(lists.resolve_list(name)).read_text()
        return {ln.split()[0] for ln in text.splitlines() if ln.strip()}

    assert not videos(train) & videos(test)


# ----------------------------------------------------------------------- subsets and draws


def test_half_class_subsets_are_deterministic_halves():
    a = protocols.half_class_subsets(101, 10, seed=0)
    assert a.shape == (10, 50)
    np.testing.assert_array_equal(a, protocols.half_class_subsets(101, 10, seed=0))
    np.testing.assert_array_equal(a[:3], protocols.half_class_subsets(101, 3, seed=0))
    assert not np.array_equal(a, protocols.half_class_subsets(101, 10, seed=1))
    for row in a:
        assert np.all(np.diff(row) > 0) and row.min() >= 0 and row.max() < 101
    assert len({tuple(r) for r in a}) == 10
    masks = protocols.subset_masks(a, 101)
    assert masks.sum(1).tolist() == [50] * 10


def test_few_shot_draw_is_per_class_deterministic_and_checked():
    labels_ = [c for c in range(5) for _ in range(10 + c)]
    pick = lists.draw_few_shot_indices(labels_, 4, seed=3)
    assert pick == lists.draw_few_shot_indices(labels_, 4, seed=3)
    assert pick != lists.draw_few_shot_indices(labels_, 4, seed=4)
    assert len(set(pick)) == 20
    assert collections.Counter(labels_[i] for i in pick) == {c: 4 for c in range(5)}
    # A class's draw depends on its own videos only: dropping class 0 leaves the rest as it was.
    rest = [x for x in labels_ if x != 0]
    offset = labels_.count(0)
    assert [i + offset for i in lists.draw_few_shot_indices(rest, 4, seed=3)] == pick[4:]
    with pytest.raises(ValueError, match="fewer than k=11"):
        lists.draw_few_shot_indices(labels_, 11)
    assert len(lists.draw_few_shot_indices(labels_, 11, allow_fewer=True)) == 10 + 4 * 11
    with pytest.raises(ValueError, match="without any video"):
        lists.draw_few_shot_indices(labels_, 2, num_classes=6)


def test_few_shot_command_writes_a_repeatable_list(tmp_path):
    out = tmp_path / "k4.txt"
    lines = splits.few_shot("ucf101/train1_few_shot_16", "ucf101", 4, 7, str(out))
    again = lists.draw_few_shot("ucf101/train1_few_shot_16", 4, 7, 101)
    assert lines == again == out.read_text().splitlines()
    assert len(lines) == 404
    source = pathlib.Path(lists.resolve_list("ucf101/train1_few_shot_16")).read_text()
    assert set(lines) <= set(source.splitlines())
    meta = json.loads((tmp_path / "k4.txt.json").read_text())
    assert meta["k"] == 4 and meta["seed"] == 7 and len(meta["list_sha256"]) == 64
    records, _ = sources.parse_list_file(out, num_classes=101)
    assert collections.Counter(r["label"] for r in records) == {c: 4 for c in range(101)}


# ------------------------------------------------------------------- scores: views, half-class


def test_view_scores_against_a_hand_computation():
    # 1 video, 2 views, 2 templates, 2 classes; features in 2-D so cosines are easy to write.
    s = 1 / math.sqrt(2)
    video = jnp.array([[[1.0, 0.0], [s, s]]])  # [B=1, V=2, E=2]
    text = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[s, s], [s, -s]]])  # [K=2, C=2, E=2]

    def softmax(z):
        e = [math.exp(x - max(z)) for x in z]
        return [x / sum(e) for x in e]

    expected = [0.0, 0.0]
    for v in np.asarray(video[0]):
        per_template = [softmax([100 * float(v @ t) for t in np.asarray(tk)]) for tk in text]
        view = [sum(p[c] for p in per_template) / 2 for c in range(2)]
        expected = [e + x / 2 for e, x in zip(expected, view)]
    got = scoring.view_scores(scoring.template_logits(video, text))
    np.testing.assert_allclose(np.asarray(got)[0], expected, rtol=1e-5)
    # Not the same as averaging logits first: the per-template softmax comes before any mean.
    mean_logit = 100 * jnp.einsum("bve,kce->bc", video, text) / 4
    assert not np.allclose(np.asarray(jax.nn.softmax(mean_logit, -1)), np.asarray(got), atol=1e-3)


def _eval_sums(logits, labels_, masks, valid=None):
    """The evaluator's own jitted step on fixed per-view, per-template logits `[B, V, K, C]`."""
    b, v, k, c = logits.shape
    batch = {
        "video": np.zeros((b, v, 1, 1, 1, 3), np.uint8),
        "label": np.asarray(labels_, np.int32),
        "index": np.arange(b),
        "mask": np.ones(b, bool) if valid is None else np.asarray(valid),
        "bad": np.zeros(b, np.int32),
    }
    fixed = lambda params, video, classes: jnp.asarray(logits, jnp.float32).reshape(b * v, k, c)
    step = jax.jit(
        functools.partial(evaluator.eval_step, predict_fn=fixed, reduce="softmax_mean",
                          dtype=jnp.float32)  # fmt: skip
    )
    return jax.device_get(step(None, batch, None, np.asarray(masks, bool), b))


def test_subset_softmax_can_change_the_argmax():
    # 2 templates × 3 classes; the half is {0, 1}; the video's class is 0.
    logits = np.array([[[0.0, -10.0, 10.0], [0.0, 1.0, -10.0]]])  # [N=1, K=2, C=3]
    full = np.asarray(jax.nn.softmax(logits, -1).mean(1))[0]
    assert full.argmax() == 2 and full[:2].argmax() == 1  # masking afterwards would pick 1
    sums = _eval_sums(logits[:, None], [0], [[True, True, False]])
    # The softmax over {0, 1} per template picks 0.
    assert (float(sums.half.correct[0]), float(sums.half.count[0])) == (1.0, 1.0)
    sums = _eval_sums(logits[:, None], [2], [[True, True, False]])
    assert float(sums.half.count[0]) == 0.0  # not in the half


def _hand_half_class(logits, labels_, subsets):
    """An independent loop: renormalised softmax per video, template, then the mean."""
    accs = []
    for subset in subsets:
        hits = total = 0
        for x, y in zip(logits, labels_):
            if y not in subset:
                continue
            probs = np.zeros(len(subset))
            for template in x:
                z = template[subset] - template[subset].max()
                probs += np.exp(z) / np.exp(z).sum()
            hits += subset[int(np.argmax(probs))] == y
            total += 1
        accs.append(hits / total)
    return float(np.mean(accs)), float(np.std(accs))


def test_half_class_mean_std_on_a_synthetic_score_matrix():
    rng = np.random.default_rng(0)
    n, k, c = 300, 3, 12
    labels_ = rng.integers(0, c, n)
    # Noisy scores that favour the true class: accuracy well between 0 and 1.
    logits = rng.normal(0, 2, (n, k, c))
    logits[np.arange(n), :, labels_] += 2.0
    subsets = protocols.half_class_subsets(c, 10, seed=5)
    sums = _eval_sums(logits[:, None], labels_, protocols.subset_masks(subsets, c))
    summary = protocols.half_class_summary(
        {"half_correct": sums.half.correct, "half_count": sums.half.count}
    )
    mean, std = summary["half_class_top1"], summary["half_class_top1_std"]
    assert (mean, std) == pytest.approx(_hand_half_class(logits, labels_, subsets), abs=1e-9)
    assert 0.2 < mean < 0.99 and std > 0


def test_half_class_device_sums_match_a_loop_over_views_and_templates():
    rng = np.random.default_rng(1)
    b, v, k, c, e = 16, 2, 3, 10, 8
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    video = unit(rng.normal(size=(b, v, e))).astype(np.float32)
    text = unit(rng.normal(size=(k, c, e))).astype(np.float32)
    labels_ = rng.integers(0, c, b)
    valid = np.arange(b) < 13  # the last rows are padding
    masks = protocols.subset_masks(protocols.half_class_subsets(c, 4, seed=2), c)
    logits = 100 * np.einsum("bve,kce->bvkc", video, text)
    out = _eval_sums(logits, labels_, masks, valid)
    for i, m in enumerate(masks):
        subset = np.flatnonzero(m)
        hits = count = 0
        for x, y in zip(logits[valid], labels_[valid]):  # [V, K, C] per video
            if not m[y]:
                continue
            z = x[:, :, subset] - x[:, :, subset].max(-1, keepdims=True)
            p = (np.exp(z) / np.exp(z).sum(-1, keepdims=True)).mean(1).mean(0)
            hits += subset[int(np.argmax(p))] == y
            count += 1
        assert float(out.half.count[i]) == count
        assert float(out.half.correct[i]) == hits
    sums = {"half_correct": out.half.correct, "half_count": out.half.count}
    summary = protocols.half_class_summary(sums)
    assert len(summary["half_class_top1_per_subset"]) == 4
    assert summary["half_class_top1"] == pytest.approx(
        np.mean(summary["half_class_top1_per_subset"])
    )


def test_statistics_and_protocol_summaries():
    assert protocols.mean_std([0.5, 0.7, 0.6]) == pytest.approx((0.6, math.sqrt(2 / 300)))
    assert protocols.harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.32 / 1.2)
    assert protocols.harmonic_mean(0.0, 0.0) == 0.0

    config = base_config.get_config()
    config.data.labels = "ucf101"
    res = lambda t1, n: {"top1": t1, "top5": 0.9, "mean_class_acc": t1, "num_videos": n}
    single = protocols.summarize_protocol(config, {"": res(0.5, 10)})
    assert single["top1"] == 0.5 and single["protocol"] == "standard" and "splits" not in single

    config.eval.protocol = "zero_shot"
    config.eval.half_class_subsets, config.eval.half_class_seed = 2, 9
    per = {f"val{i}": {**res(0.6 + 0.1 * i, 100), "half_class_top1_per_subset": [0.8, 0.9]}
           for i in (1, 2, 3)}  # fmt: skip
    zs = protocols.summarize_protocol(config, per)
    assert zs["top1"] == pytest.approx(0.8) and zs["top1_std"] == pytest.approx(math.sqrt(2 / 300))
    assert zs["num_videos"] == 300 and zs["half_class_top1"] == pytest.approx(0.85)
    assert zs["half_class_seed"] == 9 and zs["views"] == 1 and zs["class_split"] == ["ucf101"]

    config.eval.protocol = "base2novel"
    config.eval.half_class_subsets = 0
    b2n = protocols.summarize_protocol(config, {"base": res(0.9, 5), "novel": res(0.6, 5)})
    assert b2n["hm_top1"] == pytest.approx(0.72) and "top1_std" not in b2n


# ------------------------------------------------------------------- class names across sets


def test_k600_new_classes_with_and_without_the_rename_table():
    k400, k600 = labels.read_labels("kinetics400"), labels.read_labels("kinetics600")
    plain, plain_report = lists.new_classes(k400, k600)
    assert len(plain) == 231 and len(plain_report["old_not_in_new"]) == 31
    fresh, rep = lists.new_classes(k400, k600, lists.RENAMES_K400_TO_K600)
    assert len(fresh) == 220 and len(rep["renamed"]) == 11 and rep["unused_renames"] == []
    # The K400 classes that K600 dropped are reported, not lost.
    assert len(rep["old_not_in_new"]) == 20 and "tying tie" not in rep["old_not_in_new"]
    assert "dyeing hair" not in fresh and "tying necktie" not in fresh
    # The standard splits draw their classes from these 220.
    standard = set()
    for i in (1, 2, 3):
        names = labels.read_labels(f"kinetics600_zero_shot_split{i}")
        assert len(names) == 160 and set(names) <= set(fresh)
        standard |= set(names)
    assert len(standard) == 217


def test_normalise_class_name_and_unused_renames():
    assert lists.normalise_class_name("Skiing (not slalom)") == "skiing not slalom"
    assert lists.normalise_class_name("brush_hair") == "brush hair"
    fresh, rep = lists.new_classes(["a b", "c"], ["A-B", "d", "e"], {"c": "d", "x": "y"})
    assert fresh == ["e"] and rep["renamed"] == [["c", "d"]]
    assert rep["unused_renames"][0]["old"] == "x" and rep["old_not_in_new"] == []
    with pytest.raises(ValueError, match="same name"):
        lists.new_classes(["a b", "A_B"], ["c"])


def test_derive_zero_shot_command(tmp_path):
    k600 = labels.read_labels("kinetics600")
    fake_list = tmp_path / "k600.txt"
    fake_list.write_text("".join(f"v{i}.mp4 {i}\n" for i in range(600)))
    out = tmp_path / "zs"
    rep = splits.derive_zero_shot(
        "kinetics400", "kinetics600", str(out), num_splits=3, classes_per_split=160, seed=0,
        list_file=str(fake_list),
    )  # fmt: skip
    assert rep["num_new_classes"] == 220 and rep["list_videos_per_split"] == [160] * 3
    fresh = labels.read_labels(out / "new_classes.csv")
    drawn = [labels.read_labels(out / f"zero_shot_split{i}.csv") for i in (1, 2, 3)]
    assert all(len(d) == 160 and set(d) <= set(fresh) for d in drawn)
    assert drawn == lists.draw_class_splits(fresh, 3, 160, seed=0)
    assert drawn != lists.draw_class_splits(fresh, 3, 160, seed=1)
    records, _ = sources.parse_list_file(out / "zero_shot_split2.txt", num_classes=160)
    assert all(drawn[1][r["label"]] == k600[int(r["path"][1:-4])] for r in records)
    report_json = json.loads((out / "report.json").read_text())
    assert len(report_json["old_not_in_new"]) == 20
    with pytest.raises(FileExistsError):
        splits.derive_zero_shot("kinetics400", "kinetics600", str(out))


# ------------------------------------------------------------------------------------ configs

CONFIGS = [
    ("zero_shot", "ucf101", 3),
    ("zero_shot", "hmdb51", 3),
    ("zero_shot", "k600", 3),
    ("k400_b16_10x3", None, 1),
    ("k400_original_eval", "b32_8f", 1),
    ("few_shot", "ucf101,2", 1),
    ("few_shot", "hmdb51,16", 1),
    ("base2novel", "k400,s2", 2),
    ("base2novel", "ucf101,s3", 2),
    ("base2novel", "hmdb51", 2),
    ("ablation_unimodal", "ucf101", 1),
    ("ablation_bare_labels", None, 1),
    ("ablation_frozen_text", None, 1),
    ("ablation_frozen_visual", "hmdb51", 1),
    ("ablation_frozen_both", None, 1),
    ("ablation_visual_prompt", "shift,ucf101", 1),
]


@pytest.mark.parametrize("name,arg,num_tasks", CONFIGS)
def test_configs_plan_their_protocol_passes(name, arg, num_tasks, tmp_path, monkeypatch):
    module = importlib.import_module(f"configs.{name}")
    config = module.get_config(arg) if arg else module.get_config()
    assert f"configs/{name}.py" in module.__doc__  # the command that runs it
    # The plan reads the weights' sizes and the shipped lists; the checkpoint is not here, so
    # it is a random model of the config's sizes (the videos need not exist to plan).
    config.init.checkpoint = ""
    for field in ("train", "val"):
        if config.data[field] and config.data[field] not in lists.BUILTIN_LISTS:
            path = tmp_path / f"{field}.txt"
            path.write_text("".join(f"v{i}.mp4 0\n" for i in range(config.data.batch_size)))
            config.data[field] = str(path)
    monkeypatch.setattr(jax, "device_count", lambda: 1)  # batch sizes are for real hosts
    plan = plan_lib.make_plan(config, tmp_path / "workdir")
    assert len(plan.protocol) == num_tasks
    for t in plan.protocol:
        assert os.path.isfile(t.data), t.data
        # What scores the pass: prompt tokens [K, C, L], or a classifier's columns [C].
        classes = t.class_info.shape[1] if t.class_info.ndim == 3 else len(t.class_info)
        assert len(t.source) > 0 and classes == len(t.class_names)
    if plan.train_source is not None:
        assert len(plan.train_source) >= config.data.batch_size


def test_freeze_regexes_select_one_tower():
    from actionclip_jax import optim  # pylint: disable=import-outside-toplevel
    from actionclip_jax.models import actionclip  # pylint: disable=import-outside-toplevel
    from configs import ablation_frozen_both, test  # pylint: disable=import-outside-toplevel

    config = test.get_config()
    model = actionclip.build({"clip": config.model.clip.to_dict(),
                              "video": {"head": config.model.head, "num_frames": 4}})  # fmt: skip
    paths = jax.tree.leaves(optim.param_paths(actionclip.abstract_params(model)))
    both = ablation_frozen_both.get_config().optim.freeze
    frozen = {p for p in paths if re.fullmatch(both, p)}
    text = {p for p in paths if p.startswith("clip/") and not p.startswith("clip/visual/")}
    assert frozen == (text - {"clip/logit_scale"}) | {p for p in paths if "clip/visual/" in p}
    assert not any(p.startswith("fusion/") for p in frozen)


# ------------------------------------------------------------------------------------ reports


def _write_run(wd, top1, extra=None):
    wd.mkdir()
    results = {
        "protocol": "standard", "top1": top1, "top5": 0.95, "mean_class_acc": top1 - 0.01,
        "num_videos": 19328, "num_clips": 1, "num_crops": 1, "views": 1, "seed": 0,
        "class_split": ["kinetics400"], "templates_spec": "actionclip16", **(extra or {}),
    }  # fmt: skip
    (wd / "eval_results.json").write_text(json.dumps(results))


def test_report_command_on_two_runs(tmp_path):
    _write_run(tmp_path / "b16", 0.8109)
    _write_run(tmp_path / "b32", 0.7836, {"num_clips": 10, "num_crops": 3, "views": 30})
    (tmp_path / "b32" / "eval_results_heldout.json").write_text(json.dumps({"top1": 0.5}))
    out = subprocess.run(
        [sys.executable, "-m", "actionclip_jax.report", str(tmp_path / "b16"),
         str(tmp_path / "b32"), "--format=markdown", "--mean"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    header = out.splitlines()[0]
    assert "b16" in header and "b32" in header and "b32:heldout" in header
    top1 = next(ln for ln in out.splitlines() if ln.startswith("| top-1 %"))
    assert "81.09" in top1 and "78.36" in top1 and "50.00" in top1
    assert "| 1×1 | 10×3 |" in out
    # Summary files only, with the mean over the runs.
    header, rows = report.runs_table(
        report.load_runs([tmp_path / "b16", tmp_path / "b32"], "summary"), mean=True
    )
    assert header == ["", "b16", "b32", "mean ± std"]
    row = {r[0]: r for r in rows}
    mean, std = np.mean([81.09, 78.36]), np.std([81.09, 78.36])
    assert row["top-1 %"][-1] == f"{mean:.2f} ± {std:.2f}" and row["seed"][-1] == ""


def test_report_shows_splits_and_std(tmp_path):
    config = base_config.get_config()
    config.eval.protocol = "zero_shot"
    res = lambda t: {"top1": t, "top5": 0.9, "mean_class_acc": t, "num_videos": 5}
    summary = protocols.summarize_protocol(config, {"val1": res(0.5), "val2": res(0.7)})
    (tmp_path / "zs").mkdir()
    (tmp_path / "zs" / "eval_results.json").write_text(json.dumps(summary))
    header, rows = report.runs_table(report.load_runs([tmp_path / "zs"]))
    row = {r[0]: r[1] for r in rows}
    assert row["top-1 %"] == "60.00 ± 10.00" and row["top-1 % [val2]"] == "70.00"
    assert row["protocol"] == "zero_shot"
    assert "zs" in report.format_table(header, rows, "text")


def test_per_class_csv_confusions_and_png(tmp_path):
    names = ["run", "walk", "jump"]
    confusion = np.array([[5, 3, 0], [1, 6, 0], [0, 2, 2]])
    correct, count = np.diag(confusion), confusion.sum(1)
    report.write_per_class_csv(tmp_path / "pc.csv", names, correct, count, confusion)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "pc.csv").read_text())))
    assert rows[0] == {"id": "0", "name": "run", "videos": "8", "correct": "5",
                       "accuracy": "0.625000", "most_confused_with": "walk",
                       "confused_videos": "3"}  # fmt: skip
    top = report.top_confusions(confusion, names, n=2)
    assert [(t["true_name"], t["predicted_name"], t["videos"]) for t in top] == [
        ("run", "walk", 3),
        ("jump", "walk", 2),
    ]
    assert "| run | walk | 3 | 37.5% |" in report.confusions_markdown(top)

    class Writer:
        def __init__(self):
            self.calls = []

        def write_image(self, step, tag, image):
            self.calls.append((tag, image.shape, image.dtype))

        def write_text(self, step, tag, text):
            self.calls.append((tag, text))

    writer = Writer()
    sums = {"confusion": confusion, "class_correct": correct, "class_count": count}
    paths = report.write_eval_artifacts(tmp_path, names, sums, name="heldout", writer=writer)
    assert pathlib.Path(paths["confusion_png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.basename(paths["per_class_csv"]) == "per_class_heldout.csv"
    tag, shape, dtype = writer.calls[0]
    assert tag == "eval/heldout/confusion" and shape[2] == 3 and dtype == np.uint8
    assert writer.calls[1][0] == "eval/heldout/top_confusions"

    big = np.random.default_rng(0).integers(0, 5, (400, 400))
    image = report.confusion_png(tmp_path / "big.png", big, [f"c{i}" for i in range(400)])
    assert image.ndim == 3 and image.dtype == np.uint8 and os.path.getsize(tmp_path / "big.png")
    small = report.confusion_png(None, big, [f"c{i}" for i in range(400)], max_classes=20)
    assert small.shape[2] == 3


def test_flatten_links_videos_by_file_name(tmp_path):
    src = tmp_path / "UCF-101"
    for cls in ("ApplyEyeMakeup", "Archery"):
        (src / cls).mkdir(parents=True)
        (src / cls / f"v_{cls}_g01_c01.avi").write_bytes(b"x")
        (src / cls / "readme.txt").write_text("not a video")
    out = tmp_path / "flat"
    assert splits.flatten(str(src), str(out)) == 2
    assert sorted(os.listdir(out)) == ["v_ApplyEyeMakeup_g01_c01.avi", "v_Archery_g01_c01.avi"]
    assert (out / "v_Archery_g01_c01.avi").read_bytes() == b"x"
    (src / "Archery" / "v_ApplyEyeMakeup_g01_c01.avi").write_bytes(b"y")
    with pytest.raises(ValueError, match="two videos named"):
        splits.flatten(str(src), str(tmp_path / "flat2"))
