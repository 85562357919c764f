"""Weight import is strict and safe, and the converter round-trips without PyTorch."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import reference
from actionclip_jax import CheckpointError, load_clip
from actionclip_jax import weights


@pytest.fixture(scope="module")
def small_sd(small_clip_files):
    return torch.load(small_clip_files["state_dict"], weights_only=True)


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory, small_clip_files):
    """The small TorchScript archive converted once with the command-line tool."""
    out = tmp_path_factory.mktemp("converted") / "small"
    subprocess.run(
        [sys.executable, "-m", "actionclip_jax.convert",
         f"--checkpoint={small_clip_files['torchscript']}", f"--output={out}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out


def test_sizes_are_read_off_the_checkpoint(small_sd):
    assert weights.clip_sizes(small_sd) == reference.SMALL


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_clip(tmp_path / "nope.pt")


def test_empty_file_is_a_clear_error(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt.*0 bytes"):
        load_clip(tmp_path / "empty.pt")


@pytest.mark.parametrize("source", ["torchscript", "state_dict"])
def test_truncated_file_is_a_clear_error(tmp_path, small_clip_files, source):
    data = small_clip_files[source].read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.pt.*truncated, corrupt or not"):
        load_clip(bad)


def test_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("these are my notes, not weights\n" * 10)
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_clip(bad)


def test_state_dict_of_another_model_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet18ish.pt"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(2, 4)}, path)
    with pytest.raises(CheckpointError, match=r"resnet18ish.pt is not a CLIP ViT.*visual.proj"):
        load_clip(path)


def test_resnet_clip_is_refused_by_name(tmp_path):
    ref = reference.reference_clip_module()
    rn = ref.CLIP(64, 64, (1, 1, 1, 1), 64, None, 77, 49408, 64, 1, 1)
    path = tmp_path / "RN50-like.pt"
    torch.save(rn.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"RN50-like.pt is a ResNet CLIP"):
        load_clip(path)


def test_missing_key_is_an_error_not_a_silent_default(tmp_path, small_sd):
    sd = dict(small_sd)
    del sd["visual.transformer.resblocks.1.ln_2.bias"]
    path = tmp_path / "missing.pt"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"missing.pt: 1 parameters are missing.*resblocks_1/ln_2/bias"
    ):
        load_clip(path, activation="quick_gelu")


def test_leftover_key_is_an_error(tmp_path, small_sd):
    sd = dict(small_sd)
    sd["visual.extra_head.weight"] = torch.zeros(3, 3)
    path = tmp_path / "extra.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"extra.pt: 1 tensors fit no parameter.*extra_head"):
        load_clip(path, activation="quick_gelu")


def test_wrong_shape_is_an_error(tmp_path, small_sd):
    sd = dict(small_sd)
    sd["visual.ln_post.bias"] = torch.zeros(7)
    path = tmp_path / "shape.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"visual.ln_post.bias.*\(7,\).*\(128,\)"):
        load_clip(path, activation="quick_gelu")


class _Payload:
    """Unpickling this would create a marker file: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_with_arbitrary_objects_is_refused_not_executed(tmp_path, small_sd):
    marker = tmp_path / "code_ran"
    path = tmp_path / "pickled.pt"
    torch.save({"state": dict(small_sd), "payload": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load .*pickled.pt.*arbitrary"):
        load_clip(path)
    assert not marker.exists()


def test_converted_directory_gives_identical_parameters_and_features(
    converted_dir, small_clip_files, small_images
):
    meta = json.loads((converted_dir / weights.META_FILE).read_text())
    assert meta["clip"] == {**reference.SMALL, "activation": "quick_gelu", "ln_epsilon": 1e-5}
    model_pt, params_pt = load_clip(small_clip_files["torchscript"])
    model_dir, params_dir = load_clip(converted_dir)
    assert model_dir == model_pt
    for a, b in zip(
        __import__("jax").tree_util.tree_leaves(params_pt),
        __import__("jax").tree_util.tree_leaves(params_dir),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(
        model_dir.apply({"params": params_dir}, small_images, method="encode_image"),
        model_pt.apply({"params": params_pt}, small_images, method="encode_image"),
    )


def test_converter_refuses_to_overwrite_without_flag(converted_dir, small_clip_files):
    before = sorted(os.listdir(converted_dir))
    with pytest.raises(FileExistsError, match="--overwrite"):
        weights.convert(small_clip_files["torchscript"], converted_dir)
    assert sorted(os.listdir(converted_dir)) == before


def test_converter_never_overwrites_a_directory_it_did_not_write(tmp_path, small_clip_files):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a converted checkpoint"):
        weights.convert(small_clip_files["torchscript"], tmp_path, overwrite=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_converted_directory_loads_where_torch_is_not_installed(
    converted_dir, small_clip_files, small_images, tmp_path
):
    np.save(tmp_path / "images.npy", small_images)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        from actionclip_jax import load_clip
        model, params = load_clip({str(converted_dir)!r})
        x = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, model.apply({{"params": params}}, x,
                method=model.encode_image))
        try:
            load_clip({str(small_clip_files["state_dict"])!r})
        except ImportError as e:
            assert "pip install" in str(e) and "actionclip_jax.convert" in str(e), e
        else:
            raise AssertionError("reading a .pt without torch should fail")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    model, params = load_clip(small_clip_files["torchscript"])
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy"),
        model.apply({"params": params}, small_images, method="encode_image"),
        rtol=1e-6,
        atol=1e-6,
    )


def test_actionclip_checkpoint_yields_its_clip_part(small_clip_files):
    ckpt = weights.read_checkpoint(small_clip_files["actionclip"])
    assert ckpt["kind"] == "actionclip"
    assert "module.frame_position_embeddings.weight" in ckpt["fusion"]
    model, _ = load_clip(small_clip_files["actionclip"])
    assert model.vision_width == reference.SMALL["vision_width"]


# ------------------------------------------------------------- what a non-checkpoint file is


@pytest.mark.parametrize(
    "content, says",
    [
        # First byte 0x12: neither zip nor pickle (a real random file: it once was reported as
        # needing "arbitrary pickled Python objects").
        (b"\x12" + np.random.RandomState(0).bytes(4095), r"not a PyTorch checkpoint: its first"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n", r"a Git LFS"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", r"an HTML/XML page.*download"),
    ],
)
def test_file_that_is_no_checkpoint_is_named_for_what_it_is(tmp_path, content, says):
    path = tmp_path / "ViT-B-16.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"ViT-B-16.pt: it is {says}") as e:
        load_clip(path)
    assert "arbitrary" not in str(e.value)


def test_corrupt_pickle_is_not_called_unsafe(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(b"\x80\x02" + np.random.RandomState(1).bytes(200))  # pickle header + noise
    with pytest.raises(CheckpointError, match=r"old.pt: the file is truncated, corrupt") as e:
        load_clip(path)
    assert "arbitrary" not in str(e.value)


# ------------------------------------------------------------ activation of plain state dicts


@pytest.fixture(scope="module")
def gelu_clip():
    """A reference CLIP with open_clip's plain GELU in every MLP instead of QuickGELU."""
    model = reference.make_reference_clip(reference.SMALL, seed=2)
    for m in model.modules():
        if hasattr(m, "mlp"):
            m.mlp.gelu = torch.nn.GELU()
    return model


def test_plain_state_dict_needs_its_activation_stated(tmp_path, gelu_clip):
    path = tmp_path / "open_clip_b.pt"
    torch.save(gelu_clip.state_dict(), path)
    with pytest.raises(CheckpointError, match=r"open_clip_b.pt is a plain state dict.*--activ"):
        load_clip(path)


def test_gelu_state_dict_matches_its_reference_with_the_flag(
    tmp_path, gelu_clip, small_images, sample_tokens
):
    path = tmp_path / "open_clip_b.pt"
    torch.save(gelu_clip.state_dict(), path)
    ref = reference.reference_image_features(gelu_clip, small_images)
    model, params = load_clip(path, activation="gelu")
    img = model.apply({"params": params}, small_images, method=model.encode_image)
    assert reference.rel_err(img, ref) <= 1e-4
    txt = model.apply({"params": params}, sample_tokens, method=model.encode_text)
    ref_txt = reference.reference_text_features(gelu_clip, sample_tokens)
    assert reference.rel_err(txt, ref_txt) <= 1e-4
    quick, params = load_clip(path, activation="quick_gelu")
    img = quick.apply({"params": params}, small_images, method="encode_image")
    assert reference.rel_err(img, ref) > 1e-3


def _open_clip_folder(folder, model, **model_cfg):
    """An open_clip hub folder: open_clip_config.json beside open_clip_model.safetensors."""
    import safetensors.torch

    folder.mkdir()
    s = reference.SMALL
    cfg = {
        "embed_dim": s["embed_dim"],
        "vision_cfg": {"image_size": s["image_resolution"], "layers": s["vision_layers"],
                       "width": s["vision_width"], "patch_size": s["vision_patch_size"]},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": s["transformer_width"],
                     "heads": s["transformer_heads"], "layers": s["transformer_layers"]},
        **model_cfg,
    }  # fmt: skip
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(sd, folder / "open_clip_model.safetensors")
    return folder


def test_open_clip_folder_takes_the_activation_from_its_config(
    tmp_path, gelu_clip, small_clip_torch, small_images
):
    model, params = load_clip(_open_clip_folder(tmp_path / "gelu", gelu_clip))
    assert model.activation == "gelu"
    img = model.apply({"params": params}, small_images, method=model.encode_image)
    ref = reference.reference_image_features(gelu_clip, small_images)
    assert reference.rel_err(img, ref) <= 1e-4
    quick = _open_clip_folder(tmp_path / "quick", small_clip_torch, quick_gelu=True)
    assert load_clip(quick)[0].activation == "quick_gelu"
    assert load_clip(quick / "open_clip_model.safetensors")[0].activation == "quick_gelu"
    with pytest.raises(CheckpointError, match=r"uses the activation 'quick_gelu', but activation="):
        load_clip(quick, activation="gelu")


def test_open_clip_setting_outside_clip_is_refused_by_name(tmp_path, small_clip_torch):
    folder = _open_clip_folder(tmp_path / "ls", small_clip_torch, quick_gelu=True)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    cfg["model_cfg"]["vision_cfg"]["ls_init_value"] = 1e-5
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"does not have: vision_cfg.ls_init_value=1e-05"):
        load_clip(folder)


def test_converter_without_the_activation_ends_with_the_error_line(tmp_path, small_clip_files):
    out = subprocess.run(
        [sys.executable, "-m", "actionclip_jax.convert",
         f"--checkpoint={small_clip_files['state_dict']}", f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("convert: error:") and "--activation=quick_gelu" in last
    assert not (tmp_path / "out").exists()
