"""What a run computes on: XLA flags for GPUs, and the devices stated (and checked) at start.

Two calls, in this order, at the top of a program (`main.py` does both):

  devices.configure_xla_flags()   # before anything starts a JAX backend
  devices.check_devices(config)   # logs the backend and devices; warns about a silent fallback

`configure_xla_flags` adds `GPU_XLA_FLAGS` to `XLA_FLAGS` when a CUDA plugin of JAX is installed.
XLA reads `XLA_FLAGS` once, when the backend starts, so the flags must be set before that; a flag
the user already put in `XLA_FLAGS` is left as the user set it. `docs/gpu.md` explains the flags.

`check_devices` logs one line with the backend, the devices and the processes, and a warning
(with the fix) for each surprise: an accelerator that JAX does not use (its plugin is installed,
or the hardware is there, but JAX fell back to the CPU), and a bf16 compute dtype on the CPU.
"""

import glob
import importlib.metadata
import os
import re

import jax
from absl import logging

# XLA flags that this project applies on NVIDIA GPUs (one place; `docs/gpu.md` explains them).
GPU_XLA_FLAGS = (
    # Schedules collectives (the data-parallel gradient all-reduce, FSDP's all-gathers) so that
    # they overlap with computation. JAX's GPU performance guide recommends it and NVIDIA's JAX
    # containers set it; with one GPU there are no collectives and it changes nothing.
    "--xla_gpu_enable_latency_hiding_scheduler=true",
)

# Distributions that make an accelerator backend available to JAX, by the platform they bring.
ACCELERATOR_PACKAGES = {
    "gpu": ("jax-cuda13-plugin", "jax-cuda12-plugin", "jax-cuda13-pjrt", "jax-cuda12-pjrt"),
    "tpu": ("libtpu", "libtpu-nightly"),
}

# How to install each accelerator's JAX backend (the extras of pyproject.toml; README's table).
INSTALL_HINT = {
    "gpu": "pip install -e '.[cuda13]' (NVIDIA driver >= 580) or -e '.[cuda12]' (driver >= 525)",
    "tpu": "pip install -e '.[tpu]'",
}

# What to check when an installed backend did not start.
FALLBACK_HINT = {
    "gpu": (
        "check that `nvidia-smi` lists the GPU, that the driver is new enough for the plugin "
        "(>= 580 for CUDA 13, >= 525 for CUDA 12), that LD_LIBRARY_PATH does not point at "
        "other CUDA libraries, and that the plugin's version equals jaxlib's (reinstall with "
        + INSTALL_HINT["gpu"]
        + ")"
    ),
    "tpu": (
        "check that this is a TPU VM and that no other process holds the TPU "
        "(`sudo lsof -w /dev/accel* /dev/vfio/*`), and reinstall with " + INSTALL_HINT["tpu"]
    ),
}


def _flag_name(flag: str) -> str:
    return flag.split("=", 1)[0]


def installed_accelerator_packages() -> dict[str, list[str]]:
    """`{platform: ["name version", ...]}` of the installed packages in ACCELERATOR_PACKAGES."""
    found = {}
    for platform, names in ACCELERATOR_PACKAGES.items():
        for name in names:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            found.setdefault(platform, []).append(f"{name} {version}")
    return found


def accelerator_hardware() -> dict[str, str]:
    """`{platform: evidence}` for accelerators this machine has, read off /proc and /dev."""
    found = {}
    nvidia = sorted(glob.glob("/proc/driver/nvidia/gpus/*")) or sorted(
        p for p in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", p)
    )
    if nvidia:
        found["gpu"] = f"{len(nvidia)} NVIDIA GPU(s) ({nvidia[0]})"
    tpu = sorted(glob.glob("/dev/accel*")) or sorted(glob.glob("/dev/vfio/[0-9]*"))
    if tpu:
        found["tpu"] = f"TPU device files ({', '.join(tpu[:4])})"
    return found


def platforms_requested() -> list[str]:
    """The platforms JAX_PLATFORMS (or the older JAX_PLATFORM_NAME) names, lower case."""
    value = os.environ.get("JAX_PLATFORMS", "") or os.environ.get("JAX_PLATFORM_NAME", "")
    return [p.strip().lower() for p in value.split(",") if p.strip()]


def configure_xla_flags(environ=None) -> list[str]:
    """Adds GPU_XLA_FLAGS to XLA_FLAGS when a CUDA plugin is installed; returns those added.

    Call it before anything starts a JAX backend: XLA reads XLA_FLAGS once. Does nothing when
    JAX_PLATFORMS asks for no GPU, and keeps every flag the user already set, whatever its value.
    """
    environ = os.environ if environ is None else environ
    if "gpu" not in installed_accelerator_packages():
        return []
    requested = platforms_requested()
    if requested and not {"cuda", "gpu"} & set(requested):
        return []
    current = environ.get("XLA_FLAGS", "").split()
    have = {_flag_name(f) for f in current}
    added = [f for f in GPU_XLA_FLAGS if _flag_name(f) not in have]
    if added:
        environ["XLA_FLAGS"] = " ".join(current + added)
    return added


def device_warnings(
    backend: str,
    compute_dtype: str | None,
    packages: dict[str, list[str]],
    hardware: dict[str, str],
    requested: list[str],
    reasons: dict[str, str] | None = None,
) -> list[str]:
    """The warnings for a run on `backend` (pure, so that tests can feed it any machine).

    Args:
      backend: `jax.default_backend()`: "cpu", "gpu" or "tpu".
      compute_dtype: the config's `model.dtype`, or None.
      packages: `installed_accelerator_packages()`.
      hardware: `accelerator_hardware()`.
      requested: the platforms JAX_PLATFORMS names (empty: JAX chooses).
      reasons: `{platform: why its backend did not start}`, where JAX said.
    """
    warnings = []
    reasons = reasons or {}
    if backend == "cpu" and not (requested and set(requested) <= {"cpu"}):
        for platform in ("gpu", "tpu"):
            name = platform.upper()
            if platform in packages:
                why = f" ({reasons[platform]})" if platform in reasons else ""
                warnings.append(
                    f"JAX runs on the CPU although {', '.join(packages[platform])} is installed: "
                    f"the {name} backend did not start{why}. To fix it, "
                    f"{FALLBACK_HINT[platform]}. To run on the CPU on purpose, set "
                    "JAX_PLATFORMS=cpu."
                )
            elif platform in hardware:
                warnings.append(
                    f"JAX runs on the CPU although this machine has {hardware[platform]}: JAX's "
                    f"{name} backend is not installed. To use it: {INSTALL_HINT[platform]}. "
                    "To run on the CPU on purpose, set JAX_PLATFORMS=cpu."
                )
    if backend == "cpu" and compute_dtype == "bfloat16":
        warnings.append(
            "config.model.dtype=bfloat16 on the CPU: bf16 compute is meant for GPUs and TPUs; "
            "on the CPU XLA's matrix multiplies gain no speed from it (docs/benchmarks.md: "
            "as fast or slower than float32) and lose precision. Pass "
            "--config.model.dtype=float32, or run on a GPU or TPU."
        )
    return warnings


def _backend_error(platform: str) -> str | None:
    """Why JAX's backend for `platform` did not start, as JAX reports it (None: no report)."""
    try:
        jax.devices(platform)
    except RuntimeError as e:
        text = str(e).split(". Available backends", 1)[0]
        return None if text.startswith("Unknown backend") else text
    return None


def _version_mismatch(packages: list[str]) -> str | None:
    """A CUDA plugin whose version differs from jaxlib's (JAX then skips it)."""
    jaxlib = importlib.metadata.version("jaxlib")
    for entry in packages:
        name, version = entry.split(" ", 1)
        if name.startswith("jax-cuda") and version != jaxlib:
            return f"{name} {version} does not match jaxlib {jaxlib}"
    return None


def describe() -> str:
    """One line: the backend, its devices and the processes."""
    kinds = sorted({d.device_kind for d in jax.devices()})
    return (
        f"backend: {jax.default_backend()} ({', '.join(kinds)}), devices: {jax.device_count()} "
        f"({jax.local_device_count()} per process), processes: {jax.process_count()}"
    )


def current_warnings(compute_dtype: str | None = None) -> list[str]:
    """`device_warnings` for this process's backend and this machine."""
    backend = jax.default_backend()
    packages = installed_accelerator_packages()
    reasons = {}
    if backend == "cpu":
        for platform in packages:
            reason = _version_mismatch(packages[platform]) or _backend_error(
                "cuda" if platform == "gpu" else platform
            )
            if reason:
                reasons[platform] = reason
    return device_warnings(
        backend, compute_dtype, packages, accelerator_hardware(), platforms_requested(), reasons
    )


def check_devices(config=None) -> list[str]:
    """Logs the backend and devices, then one warning per surprise; returns the warnings.

    `config` (optional) is the run's config: its `model.dtype` is checked against the backend.
    """
    logging.info("%s", describe())
    warnings = current_warnings(config.model.dtype if config is not None else None)
    for w in warnings:
        logging.warning("%s", w)
    return warnings
