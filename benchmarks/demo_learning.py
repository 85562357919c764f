r"""How fast the demo model learns: the training step on clips held in memory, scored as we go.

  python benchmarks/demo_learning.py [--steps=0] [--eval_every=110] [--set=optim.lr=1e-3 ...]
      [--posinit=sincos]

Uses the project's own `train.create_train_state` and jitted `train.train_step` (model,
optimiser, loss, template draws as in a run of `configs/demo.py`), but decodes the demo's videos
once into memory and samples and augments them with the pipeline's own functions, so it skips
grain and video decoding and isolates the learning dynamics. Every `--eval_every` steps it
prints the training loss and top-1 on the validation videos, the held-out combinations and 180
training videos, each with the share of videos whose colour / shape / motion the predicted class
gets right (16 templates, scale 100, one centre view, as `evaluate`).

`--set` overrides config fields (`model.head=meanP`, `model.objective=classifier`, ...);
`--steps=0` runs the config's whole schedule. `--posinit=sincos` replaces the random ViT
position table (and the `transf` head's frame-position table) with 2-D (1-D) sin-cos values
before training. Results: docs/benchmarks.md, "Demo accuracy".
"""

import argparse
import ast
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax
import jax
import jax.numpy as jnp
import numpy as np

from actionclip_jax import augment, prompts, scoring, sharding, train
from actionclip_jax.models.clip import l2_normalize
from configs import demo
from data_pipeline import labels as label_files
from data_pipeline import sampling, synthetic, transforms, video


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=0, help="0: the config's whole schedule")
    p.add_argument("--eval_every", type=int, default=110)
    p.add_argument("--set", action="append", default=[], help="config field=value")
    p.add_argument("--posinit", choices=("", "sincos"), default="")
    return p.parse_args()


def make_config(overrides):
    config = demo.get_config()
    for item in overrides:
        key, value = item.split("=", 1)
        *path, last = key.split(".")
        node = config
        for part in path:
            node = node[part]
        node[last] = value if isinstance(node[last], str) else ast.literal_eval(value)
    return train.resolve_data(config)


def load_split(config, list_file):
    clips, labels = [], []
    with open(list_file) as f:
        for line in f:
            path, label = line.split()
            frames = video.video_num_frames(os.path.join(config.data.root, path))
            clips.append(
                video.read_video_frames(os.path.join(config.data.root, path), np.arange(frames))
            )
            labels.append(int(label))
    return np.stack(clips), np.array(labels)


def sincos(n, width):  # [n, width]: sin | cos of n positions
    omega = 1.0 / 10000 ** (np.arange(width // 2) / max(width // 2 - 1, 1))
    angle = np.outer(np.arange(n), omega)
    return np.concatenate([np.sin(angle), np.cos(angle)], 1)


def sincos_init(params):
    params = flax.core.unfreeze(jax.device_get(params))
    visual = params["clip"]["visual"]
    table = visual["positional_embedding"]  # [1 + g², W]
    g, w = round((table.shape[0] - 1) ** 0.5), table.shape[1]
    rows = sincos(g, w // 2)  # per axis: half the width
    grid = np.concatenate([np.repeat(rows, g, 0), np.tile(rows, (g, 1))], 1)  # y | x
    visual["positional_embedding"] = np.concatenate([table[:1], grid]).astype(np.float32)
    head = params.get("fusion", {}).get("frame_position_embeddings")
    if head is not None:
        head["embedding"] = sincos(*head["embedding"].shape).astype(np.float32)
    return params


def attributes(class_ids):  # demo class id = colour * 12 + shape * 4 + motion
    return class_ids // 12, (class_ids // 4) % 3, class_ids % 4


def main():
    args = parse()
    config = make_config(args.set)
    t0 = time.time()
    train_x, train_y = load_split(config, config.data.train)
    val_x, val_y = load_split(config, config.data.val)
    held_x, held_y = load_split(config, config.data.heldout)
    print(f"decoded {len(train_x) + len(val_x) + len(held_x)} videos in {time.time() - t0:.0f} s")
    names = label_files.read_labels(config.data.labels)
    assert names == synthetic.demo_classes()
    size, t = config.model.clip.image_resolution, config.data.num_frames
    batch = config.data.batch_size
    steps_per_epoch = len(train_x) // batch
    total = args.steps or int(config.optim.epochs * steps_per_epoch)

    mesh = sharding.make_mesh()
    model, tx, _, state, shardings = train.create_train_state(config, mesh, steps_per_epoch)
    if args.posinit:
        state = state.replace(params=jax.device_put(sincos_init(state.params), shardings.params))
    classifier = config.model.objective == "classifier"
    table = prompts.prompt_tokens(
        names,
        prompts.resolve_templates(config.text.templates),
        model.clip_sizes["context_length"],
    )
    text_table = None if classifier else jnp.asarray(table)
    step_fn = jax.jit(
        functools.partial(train.train_step, model=model, tx=tx, data_cfg=config.data, grad_accum=1),
        donate_argnums=(0,),
    )
    rng = np.random.default_rng(config.seed)

    def train_batch(idx):
        clips = [
            transforms.train_geometric(
                train_x[i][sampling.train_indices(len(train_x[i]), t, rng)],
                rng,
                size,
                flip=config.data.flip,
                scales=tuple(config.data.scales),
            )
            for i in idx
        ]
        n = len(idx)
        return {
            "video": np.stack(clips),
            "label": train_y[idx].astype(np.int32),
            "index": idx.astype(np.int32),
            "mask": np.ones(n, bool),
            "bad": np.zeros(n, bool),
        }

    def test_clips(clips):
        return np.stack([
            transforms.center_crop(
                transforms.resize_short_side(c[sampling.test_indices(len(c), t)], size), size
            )
            for c in clips
        ])  # fmt: skip

    @jax.jit
    def predict(params, clips, text):
        x = augment.preprocess_uint8(clips)
        if classifier:
            return jnp.argmax(model.apply({"params": params}, x)[0], -1)
        v = model.apply({"params": params}, x, method=model.encode_video)
        return jnp.argmax(scoring.class_probs(l2_normalize(v.astype(jnp.float32)), text), -1)

    def score(params, clips, labels):
        text = None if classifier else scoring.encode_class_texts(model, params, table)
        pred = np.concatenate(
            [np.asarray(predict(params, clips[i : i + 64], text)) for i in range(0, len(clips), 64)]
        )
        parts = [np.mean(a == b) for a, b in zip(attributes(pred), attributes(labels))]
        return "{:.3f} (c {:.2f} s {:.2f} m {:.2f})".format(np.mean(pred == labels), *parts)

    sets = {
        "val": (test_clips(val_x), val_y),
        "heldout": (test_clips(held_x), held_y),
        "train": (test_clips(train_x[:180]), train_y[:180]),
    }
    print(f"{steps_per_epoch} steps per epoch, {total} steps; top-1 (colour shape motion)")
    order, pos, losses, t0 = rng.permutation(len(train_x)), 0, [], time.time()
    for step in range(1, total + 1):
        if pos + batch > len(order):
            order, pos = rng.permutation(len(train_x)), 0
        state, metrics = step_fn(state, train_batch(order[pos : pos + batch]), text_table)
        pos += batch
        losses.append(float(metrics["loss"]))
        if step % args.eval_every == 0 or step == total:
            scores = " ".join(f"{k} {score(state.params, *v)}" for k, v in sets.items())
            loss = np.mean(losses[-args.eval_every :])
            print(f"step {step} loss {loss:.3f} {scores} [{time.time() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
