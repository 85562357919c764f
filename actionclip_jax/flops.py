"""Model FLOP utilisation: the train step's FLOPs from XLA, and peak rates of known devices.

The FLOPs come from the compiled executable's cost analysis (XLA counts the partitioned,
per-device program, after rematerialisation, so recomputed blocks count as work done). MFU is
achieved FLOP/s per device over the device's peak dense rate for the compute dtype; devices not in
`PEAK_TFLOPS` (CPUs) report TFLOP/s only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Peak dense (no sparsity) TFLOP/s per device for (bf16, fp32), matched against the lower-cased
# `device_kind`, first match wins. fp32 is None where the vendor gives no plain-fp32 matrix rate
# (TPUs run fp32 matmuls as several bf16 passes).
PEAK_TFLOPS = (
    # cloud.google.com/tpu/docs/v6e: 918 bf16 TFLOP/s per chip ("TPU v6 lite").
    ("tpu v6 lite", (918.0, None)),
    # cloud.google.com/tpu/docs/v5e: 197 bf16 TFLOP/s per chip ("TPU v5 lite").
    ("tpu v5 lite", (197.0, None)),
    # cloud.google.com/tpu/docs/v5p: 459 bf16 TFLOP/s per chip (device_kind "TPU v5").
    ("tpu v5", (459.0, None)),
    # cloud.google.com/tpu/docs/v4: 275 bf16 TFLOP/s per chip.
    ("tpu v4", (275.0, None)),
    # NVIDIA HGX B200 datasheet: 18 PFLOP/s bf16 with sparsity for 8 GPUs = 2,250 dense per GPU;
    # it states no plain-fp32 matrix rate.
    ("b200", (2250.0, None)),
    # NVIDIA H200 datasheet (SXM): 989 dense bf16 (1,979 with sparsity), 67 fp32.
    ("h200", (989.0, 67.0)),
    # NVIDIA H100 datasheet (SXM): 989 dense bf16, 67 fp32; the PCIe card: 756 / 51.
    ("h100 pcie", (756.0, 51.0)),
    ("h100", (989.0, 67.0)),
    # NVIDIA A100 datasheet: 312 dense bf16, 19.5 fp32 (non-TF32).
    ("a100", (312.0, 19.5)),
)


def peak_tflops(device=None, dtype=jnp.bfloat16) -> float | None:
    """The device's peak dense TFLOP/s for `dtype` (bf16 or fp32), or None when unknown."""
    device = device or jax.devices()[0]
    kind = str(getattr(device, "device_kind", "")).lower()
    for pattern, (bf16, fp32) in PEAK_TFLOPS:
        if pattern in kind:
            return bf16 if jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16) else fp32
    return None


def compiled_flops(compiled) -> float | None:
    """FLOPs of one call of an AOT-compiled program per device (None when XLA gives none)."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # pylint: disable=broad-except - some backends implement none
        return None
    if isinstance(analysis, (list, tuple)):  # older jax: one dict per program
        analysis = analysis[0] if analysis else None
    value = (analysis or {}).get("flops")
    return float(value) if value and value > 0 else None


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
