"""MFU's peak rates: device kinds as JAX names them resolve to their own row of the table."""

from types import SimpleNamespace

import jax.numpy as jnp
import pytest

from actionclip_jax import flops


@pytest.mark.parametrize(
    "kind,bf16,fp32",
    [
        ("NVIDIA H100 80GB HBM3", 989.5, 494.5),
        ("NVIDIA H100 PCIe", 756.5, 378.0),  # not the SXM part's rate
        ("NVIDIA H100 NVL", 835.5, 417.5),
        ("NVIDIA H200", 989.5, 494.5),
        ("NVIDIA H200 NVL", 835.5, 417.5),
        ("NVIDIA GB200", 2500.0, 1250.0),  # not B200's
        ("NVIDIA B200", 2250.0, 1100.0),
        ("NVIDIA A100-SXM4-80GB", 312.0, 156.0),
        ("TPU v5 lite", 197.0, 197.0),  # v5e, not v5p
        ("TPU v5", 459.0, 459.0),
        ("TPU v5p", 459.0, 459.0),
        ("TPU v6 lite", 918.0, 918.0),
        ("TPU v4", 275.0, 275.0),
    ],
)
def test_peak_rate_of_each_known_device_kind(kind, bf16, fp32):
    device = SimpleNamespace(device_kind=kind)
    assert flops.peak_tflops(device, jnp.bfloat16) == bf16
    assert flops.peak_tflops(device, jnp.float16) == bf16
    assert flops.peak_tflops(device, jnp.float32) == fp32


def test_unknown_devices_report_tflops_but_no_mfu():
    cpu = SimpleNamespace(device_kind="cpu")
    assert flops.peak_tflops(cpu) is None
    assert flops.utilisation(2e12, 0.5, jnp.bfloat16, cpu) == {"train/tflops_per_device": 1.0}
    h100 = SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3")
    assert flops.utilisation(2e12, 0.5, jnp.bfloat16, h100)["train/mfu"] == pytest.approx(
        1.0 / 989.5
    )
