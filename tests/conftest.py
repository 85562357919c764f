"""Shared fixtures: reference checkpoints are written once per test session and reused."""

import os

# Eight simulated CPU devices for the sharding tests; must be set before jax starts.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import numpy as np
import pytest
import torch
from absl import flags

import reference
import train_helpers

# grain's worker processes read absl flags, so they must count as parsed under pytest.
flags.FLAGS.mark_as_parsed()


@pytest.fixture(scope="session")
def basetemp(tmp_path_factory):
    """The session's base temporary folder; the training tests keep their shared synthetic data,
    compilation cache and runs under it (train_helpers.py)."""
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def shared_compile_cache(basetemp):
    """Points this process's persistent compilation cache at the session's for one module: the
    programs that the runs' subprocesses compile are loaded here, and the other way round."""
    with train_helpers.compile_cache(basetemp):
        yield


@pytest.fixture(scope="session")
def small_clip_torch():
    """A float32 reference CLIP of non-standard small size with random, non-trivial weights."""
    return reference.make_reference_clip(reference.SMALL, seed=0)


@pytest.fixture(scope="session")
def small_clip_torch_fp16(small_clip_torch):
    """The same model with its weights rounded to fp16 as OpenAI ships them, computing in fp32."""
    model = reference.make_reference_clip(reference.SMALL, seed=0)
    sd16 = reference.fp16_state_dict(small_clip_torch)
    model.load_state_dict({k: v.float() for k, v in sd16.items()})
    return model


@pytest.fixture(scope="session")
def small_clip_files(tmp_path_factory, small_clip_torch):
    """The small reference CLIP saved in every layout the importer reads."""
    d = tmp_path_factory.mktemp("small_clip")
    files = {
        "torchscript": d / "small_jit.pt",
        "state_dict": d / "small_sd.pt",
        "fp16_state_dict": d / "small_sd16.pt",
        "actionclip": d / "small_actionclip.pt",
    }
    reference.save_torchscript(small_clip_torch, files["torchscript"], reference.SMALL)
    torch.save(small_clip_torch.state_dict(), files["state_dict"])
    sd16 = reference.fp16_state_dict(small_clip_torch)
    torch.save(sd16, files["fp16_state_dict"])
    e = reference.SMALL["embed_dim"]
    fusion = {  # a DataParallel-wrapped fusion state dict, as ActionCLIP saves it
        "module.frame_position_embeddings.weight": torch.randn(77, e),
    }
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": sd16,
            "fusion_model_state_dict": fusion,
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 5e-6, "params": [0]}]},
        },
        files["actionclip"],
    )
    return files


@pytest.fixture(scope="session")
def small_images():
    return np.random.RandomState(1).randn(3, 112, 112, 3).astype(np.float32)


@pytest.fixture(scope="session")
def sample_tokens():
    from actionclip_jax import tokenize

    return tokenize(
        ["a photo of action abseiling", "riding a bike", "The woman is playing guitar", ""]
    )
