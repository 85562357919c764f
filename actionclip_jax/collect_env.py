r"""Prints what this program runs on, for bug reports: `python -m actionclip_jax.collect_env`.

System (Python, OS, CPU cores, memory), the versions of the libraries that matter here (or "not
installed"), the accelerator packages and hardware found, the environment variables that steer
JAX, the JAX backend with every device and its memory, whether bf16 and cuDNN attention work,
and one jitted forward+backward step of the test-sized model (`configs/test.py`'s sizes, random
weights and inputs) with its compile and step times.

Every section runs on its own: one that fails prints why and the report goes on. The exit status
is 0 whatever was found (1 only if printing itself fails), so the whole output can be pasted.
"""

import importlib
import importlib.metadata
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import time
import traceback

# Distributions whose versions are reported, in this order.
PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "grain",
    "tensorflow-datasets",
    "array-record",
    "decord",
    "av",
    "torch",
    "numpy",
    "ml-collections",
    "etils",
    "jax-cuda13-plugin",
    "jax-cuda13-pjrt",
    "jax-cuda12-plugin",
    "jax-cuda12-pjrt",
    "libtpu",
)

# Environment variables that change what JAX runs on or how much memory it takes.
ENV_VARS = (
    "JAX_PLATFORMS",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",  # the old name of XLA_CLIENT_MEM_FRACTION
    "XLA_PYTHON_CLIENT_ALLOCATOR",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "TPU_WORKER_HOSTNAMES",
    "ACTIONCLIP_JAX_DATA",
)

REPO = pathlib.Path(__file__).resolve().parents[1]  # the checkout of an editable install


def _run(cmd: list[str], timeout: float = 10.0) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gib(n_bytes) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


# ------------------------------------------------------------------------------------ sections


def system():
    yield f"Python: {sys.version.split()[0]} ({sys.executable})"
    yield f"OS: {platform.platform()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    yield f"CPU: {cpu}; {os.cpu_count()} cores, {usable or '?'} usable by this process"
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        yield f"memory: {_gib(pages * size)}"
    except (ValueError, OSError, AttributeError):
        yield "memory: unknown"
    where = f"{REPO}" if (REPO / "pyproject.toml").exists() else "installed package"
    commit = _run(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    yield (
        f"actionclip_jax: {package_version('actionclip_jax')} ({where}"
        + (f", commit {commit})" if commit else ")")
    )


def packages():
    width = max(map(len, PACKAGES))
    for name in PACKAGES:
        yield f"{name:<{width}}  {package_version(name)}"


def environment():
    for var in ENV_VARS:
        value = os.environ.get(var)
        yield f"{var}={value}" if value is not None else f"{var}: not set"


def accelerators():
    from actionclip_jax import devices  # pylint: disable=import-outside-toplevel

    hardware = devices.accelerator_hardware()
    yield f"accelerator hardware: {', '.join(hardware.values()) if hardware else 'none found'}"
    smi = shutil.which("nvidia-smi")
    if smi:
        query = "--query-gpu=name,driver_version,memory.total"
        out = _run([smi, query, "--format=csv,noheader"])
        for line in (out or "nvidia-smi gave no answer").splitlines():
            yield f"nvidia-smi: {line}"
    added = devices.configure_xla_flags()
    if added:
        yield f"GPU XLA flags added by actionclip_jax.devices: {' '.join(added)}"


def jax_devices():
    import jax  # pylint: disable=import-outside-toplevel

    from actionclip_jax import devices  # pylint: disable=import-outside-toplevel

    yield devices.describe()
    for d in jax.devices():
        try:
            stats = d.memory_stats() or {}
        except Exception:  # pylint: disable=broad-except  # not every backend implements it
            stats = {}
        mem = f"memory {_gib(stats['bytes_limit'])}" if "bytes_limit" in stats else "memory n/a"
        extra = f", compute capability {d.compute_capability}" if hasattr(
            d, "compute_capability"
        ) else ""
        yield f"  {d.id}: {d.device_kind} (process {d.process_index}), {mem}{extra}"
    yield f"bfloat16: {_bf16()}"
    yield f"cuDNN attention: {_cudnn_attention()}"
    for w in devices.current_warnings():
        yield f"WARNING: {w}"


def _bf16() -> str:
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    x = jnp.ones((16, 16), jnp.bfloat16)
    y = jax.jit(lambda a: a @ a)(x)
    ok = y.dtype == jnp.bfloat16 and float(y[0, 0]) == 16.0
    if not ok:
        return f"wrong result ({y.dtype}, {float(y[0, 0])})"
    backend = jax.default_backend()
    if backend == "cpu":
        return "computes; on the CPU no faster than float32 (use float32 there)"
    cc = getattr(jax.devices()[0], "compute_capability", None)
    if backend == "gpu" and cc is not None and float(cc) < 8.0:
        return f"computes; compute capability {cc} has no native bf16 (8.0+ has)"
    return "native"


def _cudnn_attention() -> str:
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    if jax.default_backend() != "gpu":
        return "no (needs an NVIDIA GPU)"
    q = jnp.ones((1, 16, 2, 64), jnp.bfloat16)  # [B, L, heads, head dim]
    try:
        out = jax.jit(
            lambda a: jax.nn.dot_product_attention(a, a, a, implementation="cudnn")
        )(q)
        out.block_until_ready()
    except Exception as e:  # pylint: disable=broad-except  # any failure means "not here"
        return f"no ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    return "yes"


def _test_config():
    """configs/test.py of the checkout (editable installs: every install route of README)."""
    if not (REPO / "configs" / "test.py").exists():
        raise FileNotFoundError(f"{REPO / 'configs' / 'test.py'} not found (not a checkout)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("configs.test").get_config()


def jitted_step():
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import optax  # pylint: disable=import-outside-toplevel

    from actionclip_jax.models.actionclip import ActionCLIP  # pylint: disable=import-outside-toplevel

    config = _test_config()
    m, sizes = config.model, config.model.clip.to_dict()
    model = ActionCLIP(
        clip_sizes=sizes,
        num_frames=config.data.num_frames,
        frame_stage=m.frame_stage,
        head=m.head,
        position_rows=m.position_rows,
        conv1d_original=m.conv1d_original,
        head_layers=m.head_layers,
        dtype=jnp.dtype(m.dtype),
    )
    b, t, r = 2, config.data.num_frames, sizes["image_resolution"]
    k_video, k_text, k_init, k_drop = jax.random.split(jax.random.key(0), 4)
    video = jax.random.uniform(k_video, (b, t, r, r, 3))  # [B, T, H, W, 3]
    tokens = jax.random.randint(k_text, (b, sizes["context_length"]), 1, sizes["vocab_size"])
    # Parameters from their shapes (compiling `init` would cost more than the step itself).
    abstract = jax.eval_shape(model.init, k_init, video, tokens)["params"]
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda x: rng.normal(0, 0.02, x.shape).astype(x.dtype), abstract)

    def loss_fn(p):
        logits, _ = model.apply(
            {"params": p}, video, tokens, train=True, rngs={"dropout": k_drop}
        )  # [B, B]: video i belongs with text i
        labels = jnp.arange(b)
        ce = optax.softmax_cross_entropy_with_integer_labels
        return (ce(logits, labels).mean() + ce(logits.T, labels).mean()) / 2

    step = jax.jit(jax.value_and_grad(loss_fn))
    start = time.perf_counter()
    loss, grads = jax.block_until_ready(step(params))
    first = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(step(params))
    again = time.perf_counter() - start
    finite = bool(jnp.isfinite(loss)) and all(
        bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads)
    )
    n_params = sum(x.size for x in jax.tree.leaves(params))
    yield (
        f"configs/test.py's model ({n_params / 1e6:.2f}M parameters, {m.dtype}, "
        f"{b} videos x {t} frames at {r}x{r}) on {jax.default_backend()}"
    )
    yield f"compile + first step: {first:.2f} s; next step: {again * 1e3:.1f} ms"
    yield f"loss {float(loss):.4f}; loss and gradients finite: {'yes' if finite else 'NO'}"


SECTIONS = (
    ("System", system),
    ("Packages", packages),
    ("Environment", environment),
    ("Accelerators", accelerators),
    ("JAX", jax_devices),
    ("Jitted train step", jitted_step),
)


def report(sections=None, out=None) -> bool:
    """Prints every section (default: SECTIONS) to `out` (stdout); returns whether all completed."""
    sections = SECTIONS if sections is None else sections
    out = out or sys.stdout
    print("actionclip_jax environment report (python -m actionclip_jax.collect_env)", file=out)
    complete = True
    for title, section in sections:
        print(f"\n== {title}", file=out)
        try:
            for line in section():
                print(line, file=out, flush=True)
        except Exception as e:  # pylint: disable=broad-except  # report it and go on
            complete = False
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(
                f"(this section failed: {type(e).__name__}: {e} "
                f"[{pathlib.Path(where.filename).name}:{where.lineno}])",
                file=out,
            )
    print(
        "\nPaste all of the above into the report."
        + ("" if complete else " Sections that failed say why; that is useful too."),
        file=out,
    )
    return complete


def main():
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
