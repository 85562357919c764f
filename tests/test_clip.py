"""The Flax CLIP port computes OpenAI's numbers from every checkpoint layout it imports."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import reference
from actionclip_jax import load_clip, tokenize
from actionclip_jax.models.clip import (
    ATTENTION_IMPLS,
    CLIP,
    REMAT_POLICIES,
    ResidualAttentionBlock,
    temporal_shift,
)

FP32_TOL = 1e-4
BF16_TOL = 2e-2


def _features(model, params, images, tokens):
    img = model.apply({"params": params}, images, method=model.encode_image)
    txt = model.apply({"params": params}, tokens, method=model.encode_text)
    return np.asarray(img, np.float32), np.asarray(txt, np.float32)


@pytest.fixture(scope="module")
def small_reference_features(small_clip_torch, small_clip_torch_fp16, small_images, sample_tokens):
    out = {}
    for name, m in (("fp32", small_clip_torch), ("fp16", small_clip_torch_fp16)):
        out[name] = (
            reference.reference_image_features(m, small_images),
            reference.reference_text_features(m, sample_tokens),
        )
    return out


# fp16 files compare with the reference holding the same fp16-rounded weights.
SOURCES = {
    "torchscript": "fp16",
    "state_dict": "fp32",
    "fp16_state_dict": "fp16",
    "actionclip": "fp16",
}
# Plain state dicts do not say their activation (OpenAI's CLIP and open_clip both write them).
ACTIVATION = {"torchscript": None, "state_dict": "quick_gelu", "fp16_state_dict": "quick_gelu",
              "actionclip": None}  # fmt: skip


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_small_clip_matches_reference_fp32(
    source, small_clip_files, small_reference_features, small_images, sample_tokens
):
    model, params = load_clip(small_clip_files[source], activation=ACTIVATION[source])
    img, txt = _features(model, params, small_images, sample_tokens)
    ref_img, ref_txt = small_reference_features[SOURCES[source]]
    assert img.shape == (3, reference.SMALL["embed_dim"])
    assert reference.rel_err(img, ref_img) <= FP32_TOL
    assert reference.rel_err(txt, ref_txt) <= FP32_TOL


def test_small_clip_matches_reference_bf16(
    small_clip_files, small_reference_features, small_images, sample_tokens
):
    model, params = load_clip(
        small_clip_files["state_dict"], dtype=jnp.bfloat16, activation="quick_gelu"
    )
    img, txt = _features(model, params, small_images, sample_tokens)
    ref_img, ref_txt = small_reference_features["fp32"]
    assert reference.rel_err(img, ref_img) <= BF16_TOL
    assert reference.rel_err(txt, ref_txt) <= BF16_TOL


def test_torchscript_fixture_really_holds_fp16_weights(small_clip_files):
    sd = torch.jit.load(str(small_clip_files["torchscript"]), map_location="cpu").state_dict()
    assert sd["visual.conv1.weight"].dtype == torch.float16
    assert sd["transformer.resblocks.0.attn.in_proj_weight"].dtype == torch.float16
    assert sd["visual.proj"].dtype == torch.float16
    assert sd["ln_final.weight"].dtype == torch.float32
    assert sd["token_embedding.weight"].dtype == torch.float32


def test_fp16_weights_are_widened_exactly_not_rounded(small_clip_files):
    sd = torch.load(small_clip_files["fp16_state_dict"], weights_only=True)
    _, params = load_clip(small_clip_files["fp16_state_dict"], activation="quick_gelu")
    kernel = params["visual"]["conv1"]["kernel"]
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(
        kernel, sd["visual.conv1.weight"].float().numpy().transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        params["transformer"]["resblocks_1"]["attn"]["in_proj"]["kernel"],
        sd["transformer.resblocks.1.attn.in_proj_weight"].float().numpy().T,
    )
    # fp32 tensors stay bit-exact, including those that fp16 could not hold.
    np.testing.assert_array_equal(
        params["positional_embedding"], sd["positional_embedding"].numpy()
    )
    assert params["logit_scale"] == np.float32(sd["logit_scale"].item())


def test_image_features_are_not_l2_normalised(small_clip_files, small_images):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")
    img = model.apply({"params": params}, small_images, method=model.encode_image)
    norms = np.linalg.norm(np.asarray(img), axis=-1)
    assert not np.allclose(norms, 1.0, atol=1e-3)


def test_encode_jits_and_remat_gives_the_same_features(small_clip_files, small_images):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")
    remat_model, _ = load_clip(small_clip_files["state_dict"], remat=True, activation="quick_gelu")
    eager = model.apply({"params": params}, small_images, method=model.encode_image)

    @jax.jit
    def f(p, x):
        return remat_model.apply({"params": p}, x, method=remat_model.encode_image)

    np.testing.assert_allclose(f(params, small_images), eager, rtol=1e-5, atol=1e-5)
    grads = jax.grad(
        lambda p: jnp.sum(remat_model.apply({"params": p}, small_images, method="encode_image"))
    )(params)
    assert float(jnp.abs(grads["visual"]["conv1"]["kernel"]).sum()) > 0


@pytest.mark.slow  # six compiles of the small CLIP with gradients (about a minute in CI)
def test_remat_policies_and_attention_impls_give_the_same_features_and_gradients(
    small_clip_files, small_images, sample_tokens
):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")

    def loss(m):
        def f(p):
            img = m.apply({"params": p}, small_images, method="encode_image")
            txt = m.apply({"params": p}, sample_tokens, method="encode_text")
            return jnp.sum(img**2) + jnp.sum(txt**2)

        return jax.jit(jax.value_and_grad(f))(params)

    want_value, want_grads = loss(model)
    variants = [dict(remat=True, remat_policy=p) for p in REMAT_POLICIES]
    variants += [dict(attention_impl=a) for a in ATTENTION_IMPLS if a != "cudnn"]  # no GPU here
    for options in variants:
        value, grads = loss(model.clone(**options))
        np.testing.assert_allclose(value, want_value, rtol=1e-5, err_msg=str(options))
        jax.tree.map(
            lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6), grads, want_grads
        )


def test_bf16_block_keeps_fp32_weights_and_fp32_softmax_and_layernorm_statistics():
    block = ResidualAttentionBlock(heads=2, dtype=jnp.bfloat16)
    x = jnp.ones((2, 5, 64), jnp.bfloat16)
    params = block.init(jax.random.key(0), x)["params"]
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda p, x: block.apply({"params": p}, x))(params, x)

    def eqns(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                yield from eqns(sub)

    found = [e for e in eqns(jaxpr.jaxpr) if e.primitive.name in ("exp", "reduce_sum", "rsqrt")]
    # The attention softmax (exp, sum), LayerNorm's mean and variance (sums) and its rsqrt.
    assert {e.primitive.name for e in found} == {"exp", "reduce_sum", "rsqrt"}
    for e in found:
        assert all(v.aval.dtype == jnp.float32 for v in e.invars), e
    # The projections and the MLP compute in bf16: the block's output too.
    assert jaxpr.out_avals[0].dtype == jnp.bfloat16


def test_text_shorter_than_context_gives_the_same_features(small_clip_files, sample_tokens):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")
    full = model.apply({"params": params}, sample_tokens, method=model.encode_text)
    short = model.apply({"params": params}, sample_tokens[:, :16], method=model.encode_text)
    np.testing.assert_allclose(short, full, rtol=1e-5, atol=1e-5)


def test_logits_use_the_learned_scale(small_clip_files, small_images, sample_tokens):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")
    logits = model.apply({"params": params}, small_images, sample_tokens)
    img, txt = _features(model, params, small_images, sample_tokens)
    img = img / np.linalg.norm(img, axis=-1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=-1, keepdims=True)
    scale = np.exp(float(params["logit_scale"]))
    np.testing.assert_allclose(logits, scale * img @ txt.T, rtol=1e-4, atol=1e-4)


def test_wrong_image_size_is_a_clear_error(small_clip_files):
    model, params = load_clip(small_clip_files["state_dict"], activation="quick_gelu")
    with pytest.raises(ValueError, match=r"\[N, 112, 112, 3\]"):
        model.apply(
            {"params": params}, np.zeros((1, 3, 112, 112), np.float32), method="encode_image"
        )


def test_temporal_shift_moves_an_eighth_of_patch_channels_each_way_never_cls():
    b, t, n, c = 2, 4, 5, 16
    x = jnp.arange(b * t * (n + 1) * c, dtype=jnp.float32).reshape(b * t, n + 1, c) + 1
    y = np.asarray(temporal_shift(x, t)).reshape(b, t, n + 1, c)
    xs = np.asarray(x).reshape(b, t, n + 1, c)
    np.testing.assert_array_equal(y[:, :, 0], xs[:, :, 0])  # CLS untouched
    np.testing.assert_array_equal(y[:, :-1, 1:, :2], xs[:, 1:, 1:, :2])  # from the next frame
    np.testing.assert_array_equal(y[:, -1, 1:, :2], 0)
    np.testing.assert_array_equal(y[:, 1:, 1:, 2:4], xs[:, :-1, 1:, 2:4])  # from the previous
    np.testing.assert_array_equal(y[:, 0, 1:, 2:4], 0)
    np.testing.assert_array_equal(y[:, :, 1:, 4:], xs[:, :, 1:, 4:])


def test_random_init_builds_every_standard_size():
    # ViT-L/14@336px: 577 tokens; only shapes are built (eval_shape), nothing is computed.
    model = CLIP(
        embed_dim=768,
        image_resolution=336,
        vision_layers=24,
        vision_width=1024,
        vision_patch_size=14,
        context_length=77,
        vocab_size=49408,
        transformer_width=768,
        transformer_heads=12,
        transformer_layers=12,
    )
    shapes = jax.eval_shape(
        model.init,
        jax.random.key(0),
        jax.ShapeDtypeStruct((1, 336, 336, 3), jnp.float32),
        jax.ShapeDtypeStruct((1, 77), jnp.int32),
    )["params"]
    assert shapes["visual"]["positional_embedding"].shape == (577, 1024)
    assert shapes["visual"]["conv1"]["kernel"].shape == (14, 14, 3, 1024)
    n = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
    assert 427_000_000 < n < 429_000_000  # CLIP ViT-L/14@336px has ~427.9M parameters


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory):
    """Full-size ViT-B/32 in a TorchScript archive, imported once, with reference features."""
    torch_model = reference.make_reference_clip(reference.VIT_B32, seed=7)
    path = tmp_path_factory.mktemp("b32") / "ViT-B-32.pt"
    reference.save_torchscript(torch_model, path, reference.VIT_B32)
    rounded = reference.make_reference_clip(reference.VIT_B32, seed=7)
    rounded.load_state_dict(
        {k: v.float() for k, v in reference.fp16_state_dict(torch_model).items()}
    )
    del torch_model
    images = np.random.RandomState(3).randn(2, 224, 224, 3).astype(np.float32)
    tokens = tokenize(["a photo of action abseiling", "Look, the human is riding a bike"])
    ref_img = reference.reference_image_features(rounded, images)
    ref_txt = reference.reference_text_features(rounded, tokens)
    model, params = load_clip(path)
    return model, params, images, tokens, ref_img, ref_txt


@pytest.mark.slow
@pytest.mark.parametrize("dtype,tol", [(jnp.float32, FP32_TOL), (jnp.bfloat16, BF16_TOL)])
def test_vit_b32_from_torchscript_matches_reference(vit_b32, dtype, tol):
    model, params, images, tokens, ref_img, ref_txt = vit_b32
    assert (model.vision_layers, model.vision_patch_size, model.image_resolution) == (12, 32, 224)
    img, txt = _features(model.clone(dtype=dtype), params, images, tokens)
    assert reference.rel_err(img, ref_img) <= tol
    assert reference.rel_err(txt, ref_txt) <= tol
