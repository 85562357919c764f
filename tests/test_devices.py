"""The device a run uses is stated at start, and a silent fallback to the CPU is a warning.

`device_warnings` is fed imagined machines (a CUDA plugin installed, GPU hardware present, ...);
`check_devices` and the XLA flags run for real on this CPU.
"""

import logging
import os
import subprocess
import sys
import textwrap

from actionclip_jax import devices

CUDA = {"gpu": ["jax-cuda13-plugin 0.10.2", "jax-cuda13-pjrt 0.10.2"]}
TPU = {"tpu": ["libtpu 0.0.42.1"]}


def test_cuda_plugin_installed_but_cpu_backend_warns_with_the_fix():
    (w,) = devices.device_warnings("cpu", "float32", CUDA, {}, [], {"gpu": "driver too old"})
    assert "JAX runs on the CPU although jax-cuda13-plugin 0.10.2" in w
    assert "(driver too old)" in w
    assert "nvidia-smi" in w and "JAX_PLATFORMS=cpu" in w


def test_libtpu_installed_but_cpu_backend_warns():
    (w,) = devices.device_warnings("cpu", None, TPU, {"tpu": "TPU device files"}, [])
    assert "libtpu 0.0.42.1 is installed" in w and "pip install -e '.[tpu]'" in w


def test_gpu_hardware_without_a_cuda_plugin_names_the_extra_to_install():
    hardware = {"gpu": "1 NVIDIA GPU(s) (/proc/driver/nvidia/gpus/0000:00:04.0)"}
    (w,) = devices.device_warnings("cpu", "float32", {}, hardware, [])
    assert "this machine has 1 NVIDIA GPU(s)" in w
    assert "pip install -e '.[cuda13]'" in w and "'.[cuda12]'" in w


def test_no_fallback_warning_when_the_cpu_is_asked_for(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "CPU")
    requested = devices.platforms_requested()
    assert requested == ["cpu"]
    assert devices.device_warnings("cpu", "float32", CUDA, {"gpu": "x"}, requested) == []


def test_no_warning_on_the_accelerator_or_on_a_plain_cpu_machine():
    assert devices.device_warnings("gpu", "bfloat16", CUDA, {"gpu": "x"}, []) == []
    assert devices.device_warnings("tpu", "bfloat16", TPU, {"tpu": "x"}, []) == []
    assert devices.device_warnings("cpu", "float32", {}, {}, []) == []


def test_bf16_compute_on_the_cpu_warns_and_says_how_to_switch():
    (w,) = devices.device_warnings("cpu", "bfloat16", {}, {}, [])
    assert "--config.model.dtype=float32" in w


def test_fallback_and_bf16_are_two_warnings():
    assert len(devices.device_warnings("cpu", "bfloat16", CUDA, {}, [])) == 2


def test_check_devices_logs_the_backend_and_warns_about_bf16_here(caplog):
    from configs import base  # bf16 compute: the default for accelerators

    with caplog.at_level(logging.INFO):
        warnings = devices.check_devices(base.get_config())
    text = caplog.text
    assert "backend: cpu" in text and "devices: " in text and "processes: 1" in text
    # This machine has neither an accelerator package nor the hardware: bf16 is the one warning.
    assert len(warnings) == 1 and "bfloat16" in warnings[0]
    assert warnings[0] in text


def test_this_machine_with_a_cuda_plugin_of_another_version_warns_and_names_it(monkeypatch):
    # The real backend (the CPU) and JAX's own error lookup; only the installed plugin is made up.
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    fake = {"gpu": ["jax-cuda13-plugin 0.0.1", "jax-cuda13-pjrt 0.0.1"]}
    monkeypatch.setattr(devices, "installed_accelerator_packages", lambda: fake)
    (w,) = devices.current_warnings("float32")
    assert "JAX runs on the CPU although jax-cuda13-plugin 0.0.1" in w
    assert "(jax-cuda13-plugin 0.0.1 does not match jaxlib " in w


def test_configure_xla_flags_adds_gpu_flags_only_with_a_cuda_plugin(monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr(devices, "installed_accelerator_packages", lambda: {})
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert devices.configure_xla_flags(env) == []
    assert env == {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}

    monkeypatch.setattr(devices, "installed_accelerator_packages", lambda: CUDA)
    assert devices.configure_xla_flags(env) == list(devices.GPU_XLA_FLAGS)
    assert env["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x", *devices.GPU_XLA_FLAGS]
    assert devices.configure_xla_flags(env) == []  # idempotent


def test_configure_xla_flags_keeps_the_users_value_and_respects_jax_platforms(monkeypatch):
    monkeypatch.setattr(devices, "installed_accelerator_packages", lambda: CUDA)
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    name = devices.GPU_XLA_FLAGS[0].split("=")[0]
    env = {"XLA_FLAGS": f"{name}=false"}
    devices.configure_xla_flags(env)
    assert f"{name}=false" in env["XLA_FLAGS"] and f"{name}=true" not in env["XLA_FLAGS"]

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    env = {}
    assert devices.configure_xla_flags(env) == [] and env == {}


def test_gpu_xla_flags_are_known_to_this_jaxlib():
    # XLA aborts at backend start on a flag it does not know, on every platform: a flag renamed
    # in a new jaxlib fails here, on the CPU, before it breaks GPU runs.
    env = dict(os.environ, XLA_FLAGS=" ".join(devices.GPU_XLA_FLAGS), JAX_PLATFORMS="cpu")
    code = "import jax.numpy as jnp; print(float((jnp.ones(3) * 2).sum()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "6.0"


def test_importing_the_entry_points_starts_no_backend():
    # configure_xla_flags() runs first thing in main(); XLA_FLAGS set then only takes effect if
    # importing the program did not already start a backend.
    code = textwrap.dedent(
        """
        import actionclip_jax.main, actionclip_jax.predict, actionclip_jax.collect_env
        from jax._src import xla_bridge
        print(xla_bridge.backends_are_initialized())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
