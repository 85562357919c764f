"""Model FLOP utilisation: a step's FLOPs counted by XLA, and peak rates of known devices.

The count is XLA's cost analysis of the step's traced program (`jax.stages.Lowered`), before any
optimisation or partitioning: it counts each `dot` of the global step as written, the same on
every backend, and needs no compilation of its own. The compiled executable's count is not used:
it is per device and after fusion, where XLA:GPU has in past releases counted matmuls turned
into fusions or library calls wrongly (jax-ml/jax#16008, #22249), and it adds whatever the program
does replicated on every device. Global FLOPs over the devices of the data axis are the FLOPs per device of data
parallelism (with FSDP too: the same compute, parameters gathered).

Model FLOPs, as in MFU, exclude rematerialisation: `train.model_flops` counts the step without
remat (and without micro-batch loops, whose body XLA counts once, and with XLA's attention, since
cuDNN's is a library call XLA cannot count). MFU is achieved model FLOP/s per device over the
device's peak dense rate for the compute dtype; devices not in `PEAK_TFLOPS` (CPUs) report TFLOP/s
only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Peak dense (no sparsity) matrix TFLOP/s per device for (bf16, fp32), matched against the
# lower-cased `device_kind`, first match wins (so the variants come before the base name). The
# fp32 column is the rate at which JAX's default precision runs float32 matmuls: TF32 on NVIDIA
# GPUs since Ampere, one bf16 pass on TPUs (docs.jax.dev, "Matmul precision"). NVIDIA's
# datasheets give rates with 2:4 sparsity; the dense rate is half of that.
PEAK_TFLOPS = (
    # cloud.google.com/tpu/docs/v6e: 918 bf16 TFLOP/s per chip (device_kind "TPU v6 lite").
    ("tpu v6 lite", (918.0, 918.0)),
    # cloud.google.com/tpu/docs/v5e: 197 bf16 TFLOP/s per chip ("TPU v5 lite").
    ("tpu v5 lite", (197.0, 197.0)),
    # cloud.google.com/tpu/docs/v5p: 459 bf16 TFLOP/s per chip ("TPU v5" or "TPU v5p").
    ("tpu v5", (459.0, 459.0)),
    # cloud.google.com/tpu/docs/v4: 275 bf16 TFLOP/s per chip.
    ("tpu v4", (275.0, 275.0)),
    # NVIDIA GB200 NVL72 datasheet, per Blackwell GPU: 5 PFLOP/s FP16/BF16 and 2.5 TF32, sparse.
    ("gb200", (2500.0, 1250.0)),
    # NVIDIA HGX B200 datasheet, per GPU: 4.5 PFLOP/s FP16/BF16 and 2.2 TF32, sparse.
    ("b200", (2250.0, 1100.0)),
    # NVIDIA H200 NVL and H100 NVL datasheets: 1,671 BF16 and 835 TF32 TFLOP/s, sparse.
    ("h200 nvl", (835.5, 417.5)),
    ("h100 nvl", (835.5, 417.5)),
    # NVIDIA H200 datasheet (SXM, also GH200's GPU): 1,979 BF16 and 989 TF32 TFLOP/s, sparse.
    ("h200", (989.5, 494.5)),
    # NVIDIA H100 datasheet: PCIe 1,513 BF16 / 756 TF32; SXM 1,979 / 989 (sparse).
    ("h100 pcie", (756.5, 378.0)),
    ("h100", (989.5, 494.5)),
    # NVIDIA A100 datasheet (SXM and PCIe): 312 BF16 and 156 TF32 TFLOP/s, dense.
    ("a100", (312.0, 156.0)),
)


def peak_tflops(device=None, dtype=jnp.bfloat16) -> float | None:
    """The device's peak dense TFLOP/s for `dtype` (bf16/fp16 or fp32), or None when unknown."""
    device = device or jax.devices()[0]
    kind = str(getattr(device, "device_kind", "")).lower()
    for pattern, (bf16, fp32) in PEAK_TFLOPS:
        if pattern in kind:
            return bf16 if jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) else fp32
    return None


def _flops_of(analysis) -> float | None:
    if isinstance(analysis, (list, tuple)):  # older jax: one dict per program
        analysis = analysis[0] if analysis else None
    value = (analysis or {}).get("flops")
    return float(value) if value and value > 0 else None


def lowered_flops(lowered, num_devices: int = 1) -> float | None:
    """FLOPs per device of one call of a traced (`jit(...).lower(...)`) program: XLA's count of
    the whole program over `num_devices` (None when the backend gives none)."""
    try:
        analysis = lowered.cost_analysis()
    except Exception:  # pylint: disable=broad-except - some backends implement none
        return None
    flops = _flops_of(analysis)
    return flops / num_devices if flops else None


def compiled_flops(compiled) -> float | None:
    """FLOPs of one call of a compiled program on one device, by XLA's count after optimisation
    (recomputation and replicated work included; see the module docstring for its limits)."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # pylint: disable=broad-except - some backends implement none
        return None
    return _flops_of(analysis)


def utilisation(flops_per_step, steps_per_second: float, dtype, device=None) -> dict:
    """`train/tflops_per_device`, and `train/mfu` where the device's peak is known."""
    if not flops_per_step:
        return {}
    achieved = flops_per_step * steps_per_second / 1e12
    out = {"train/tflops_per_device": achieved}
    peak = peak_tflops(device, dtype)
    if peak:
        out["train/mfu"] = achieved / peak
    return out
