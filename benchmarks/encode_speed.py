r"""Speed of the CLIP port against the PyTorch reference, and of the tokenizer.

  python benchmarks/encode_speed.py [--frames=8] [--repeats=5] [--threads=N] [--xla_flags=...]

Times the ViT-B/16 image tower on `--frames` frames at 224² (JAX fp32, JAX bf16, OpenAI's
`clip/model.py` in fp32 on the same number of threads; random weights: speed does not depend on
them); ActionCLIP's `encode_video` (B/16 + the `transf` head) for one video of each of
`--video_frames` lengths, JAX against the PyTorch transcription of the original in the tests; and
tokenizing 10,000 prompts with a fresh tokenizer. Prints tables; the median of `--repeats` runs
after one warm-up run.

Also the matrix-multiply ceiling of both libraries (one fp32 GEMM shaped like the ViT-B/16 MLP
on 8 frames, and a 4096³ one): a ViT is ~96% GEMM FLOPs, so its time is bounded by these rates.
`--xla_flags` adds XLA options, e.g. `--xla_cpu_experimental_onednn_fusion_type=dot` (oneDNN
matmuls instead of XLA's own; experimental in jaxlib 0.10).
"""

import argparse
import os
import statistics
import sys
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--video_frames", default="8,16,32", help="comma-separated T; empty to skip")
    p.add_argument("--xla_flags", default="", help="extra XLA_FLAGS for the JAX side")
    return p.parse_args()


ARGS = _parse()
# XLA's CPU client runs one thread per visible core (it has no thread-count flag); `--threads`
# sets torch's to match. Extra options must be in place before jax starts.
if ARGS.xla_flags:
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {ARGS.xla_flags}".strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from actionclip_jax.models.clip import CLIP  # noqa: E402

B16 = dict(
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=16,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)


def median_time(fn, repeats):
    fn()  # warm-up (compilation for JAX)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_jax(images, dtype):
    model = CLIP(**B16, dtype=dtype)
    params = jax.jit(model.init)(jax.random.key(0), images[:1], jnp.zeros((1, 77), jnp.int32))
    params = params["params"]
    encode = jax.jit(lambda p, x: model.apply({"params": p}, x, method=model.encode_image))
    x = jnp.asarray(images)
    return median_time(lambda: encode(params, x).block_until_ready(), ARGS.repeats)


def torch_reference():
    """The tests' PyTorch reference modules, or None where torch / openai-clip are missing."""
    try:
        import torch

        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        import reference
        import reference_actionclip
    except ImportError as e:
        print(f"(PyTorch reference skipped: {e})")
        return None
    torch.set_num_threads(ARGS.threads)
    return torch, reference, reference_actionclip


def bench_torch(images):
    ref = torch_reference()
    if ref is None:
        return None
    torch, reference, _ = ref
    model = reference.reference_clip_module().CLIP(**B16).eval()
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

    def run():
        with torch.no_grad():
            model.encode_image(x)

    return median_time(run, ARGS.repeats)


def bench_video(t):
    """encode_video of one B/16 `transf` video of `t` frames: (JAX fp32 s, PyTorch s or None)."""
    from actionclip_jax.models.actionclip import ActionCLIP

    video = np.random.RandomState(0).randn(1, t, 224, 224, 3).astype(np.float32)
    model = ActionCLIP(B16, num_frames=t, head="transf")
    params = jax.jit(model.init)(jax.random.key(0), video, jnp.zeros((1, 77), jnp.int32))
    encode = jax.jit(lambda p, v: model.apply(p, v, method=model.encode_video))
    x = jnp.asarray(video)
    jax_s = median_time(lambda: encode(params, x).block_until_ready(), ARGS.repeats)
    params = None  # frees the JAX weights before PyTorch's model is built
    ref = torch_reference()
    if ref is None:
        return jax_s, None
    torch, reference, reference_actionclip = ref
    clip = reference.reference_clip_module().CLIP(**B16).eval()
    fusion = reference_actionclip.make_fusion("Transf", clip, t, randomize=False)
    video_model = reference_actionclip.ActionCLIPReference(clip, fusion, t).eval()
    xt = torch.from_numpy(np.ascontiguousarray(video.transpose(0, 1, 4, 2, 3)))

    def run():
        with torch.no_grad():
            video_model.encode_video(xt)

    return jax_s, median_time(run, ARGS.repeats)


def vit_gflop(frames: int) -> float:
    """Forward FLOPs (2 per multiply-add) of the ViT-B/16 image tower on `frames` images."""
    w, n, layers = 768, (224 // 16) ** 2 + 1, 12
    per_token_layer = 24 * w * w + 4 * n * w  # QKV, out, MLP; attention scores and mix
    return frames * (n * layers * per_token_layer + 2 * (224 * 224 * 3) * w) / 1e9


def bench_gemm():
    """fp32 GFLOP/s of one matmul per shape: [(name, jax, torch or None)]."""
    shapes = {"ViT-B/16 MLP, 8 frames": (8 * 197, 768, 3072), "4096³": (4096, 4096, 4096)}
    ref = torch_reference()
    rows = []
    mm = jax.jit(jnp.matmul)
    for name, (m, k, n) in shapes.items():
        a = np.random.RandomState(0).rand(m, k).astype(np.float32)
        b = np.random.RandomState(1).rand(k, n).astype(np.float32)
        flop = 2 * m * k * n / 1e9
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        jax_rate = flop / median_time(lambda x=ja, y=jb: mm(x, y).block_until_ready(), ARGS.repeats)
        torch_rate = None
        if ref is not None:
            torch = ref[0]
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            torch_rate = flop / median_time(lambda x=ta, y=tb: x @ y, ARGS.repeats)
        rows.append((name, jax_rate, torch_rate))
    return rows


def bench_tokenizer():
    import csv
    import importlib.resources

    from actionclip_jax import tokenizer as tok_lib
    from actionclip_jax.prompts import TEMPLATES

    names = []
    labels = importlib.resources.files("actionclip_jax") / "assets" / "labels"
    for f in ("kinetics_400_labels.csv", "kinetics_600_labels.csv", "ucf_labels.csv"):
        with (labels / f).open() as fh:
            names += [row["name"] for row in csv.DictReader(fh)]
    prompts = [t.format(n) for n in names for t in TEMPLATES][:10_000]

    def run():
        tok_lib.Tokenizer().__call__(prompts)  # fresh: no cached BPE words

    return len(prompts), median_time(run, ARGS.repeats)


def main():
    images = np.random.RandomState(0).randn(ARGS.frames, 224, 224, 3).astype(np.float32)
    rows = []
    ref = bench_torch(images)
    if ref is not None:
        rows.append(("PyTorch reference (openai clip/model.py), fp32", ref))
    rows.append(("JAX/Flax, fp32", bench_jax(images, jnp.float32)))
    rows.append(("JAX/Flax, bf16 compute", bench_jax(images, jnp.bfloat16)))
    print(
        f"\nViT-B/16 image tower, {ARGS.frames} frames at 224², {ARGS.threads} threads, "
        f"median of {ARGS.repeats} after warm-up, backend {jax.default_backend()}"
    )
    print(f"| {'implementation':<48} | {'s / call':>9} | {'frames/s':>9} | {'vs ref':>7} |")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 9}|")
    for name, t in rows:
        speedup = f"{ref / t:.2f}×" if ref else "-"
        print(f"| {name:<48} | {t:>9.3f} | {ARGS.frames / t:>9.1f} | {speedup:>7} |")
    print(f"({vit_gflop(ARGS.frames):.0f} GFLOP per call: GFLOP/s = that / s per call)")
    print(f"\nfp32 matrix multiply, {ARGS.threads} threads, GFLOP/s")
    print(f"| {'shape':<24} | {'XLA':>6} | {'PyTorch':>7} |")
    print(f"|{'-' * 26}|{'-' * 8}|{'-' * 9}|")
    for name, jax_rate, torch_rate in bench_gemm():
        tr = f"{torch_rate:>7.0f}" if torch_rate else f"{'-':>7}"
        print(f"| {name:<24} | {jax_rate:>6.0f} | {tr} |")
    lengths = [int(t) for t in ARGS.video_frames.split(",") if t]
    if lengths:
        print(f"\nencode_video, ViT-B/16 + transf head, one video, fp32, {ARGS.threads} threads")
        print(f"| {'frames':>6} | {'JAX s':>8} | {'PyTorch s':>9} | {'speed-up':>8} |")
        print(f"|{'-' * 8}|{'-' * 10}|{'-' * 11}|{'-' * 10}|")
        for t in lengths:
            jax_s, torch_s = bench_video(t)
            ts = f"{torch_s:>9.3f}" if torch_s else f"{'-':>9}"
            sp = f"{torch_s / jax_s:>7.2f}×" if torch_s else f"{'-':>8}"
            print(f"| {t:>6} | {jax_s:>8.3f} | {ts} | {sp} |")
    n, t = bench_tokenizer()
    print(
        f"\nTokenizer: {n} prompts (16 templates × K400/K600/UCF101 names), fresh tokenizer: {t:.3f} s"
    )


if __name__ == "__main__":
    main()
