"""The paper's unimodal baseline: the video encoder with a 1-of-N linear layer and cross-entropy.

The model has no text tower; the linear layer (`classifier`, lr × `optim.fusion_ratio`, a new layer
on pretrained towers like the temporal head) reads the un-normalised video feature. It scores only
the classes it was trained on: a pass over a subset of them reads those columns (so its softmax
runs over its own classes, as a half-class subset's); an unseen class is an error.
"""

import jax.numpy as jnp
import numpy as np

from actionclip_jax import losses


def model_fields(num_classes: int) -> dict:
    return {"with_text": False, "num_classes": int(num_classes)}


def class_index(class_names, trained_names, what: str = "evaluation") -> np.ndarray:
    """The linear layer's columns that score `class_names`, in their order.

    Args:
      class_names: the pass's classes (`class_names[i]` = label id i of its list).
      trained_names: the classes of the layer's outputs (`data.labels`).
      what: names the pass in the error.
    Raises:
      ValueError: a class has no output (the layer was not trained on it).
    """
    column = {n: i for i, n in enumerate(trained_names)}
    unseen = [n for n in class_names if n not in column]
    if unseen:
        raise ValueError(
            f"model.objective='classifier' cannot score {what}: {len(unseen)} of its "
            f"{len(class_names)} classes (e.g. {unseen[:3]}) are not among the "
            f"{len(trained_names)} classes the classifier was trained on (data.labels). A 1-of-N "
            "linear head has an output only for its training classes, so it cannot score unseen "
            "ones; evaluate this with model.objective='video_text' (ActionCLIP)."
        )
    return np.array([column[n] for n in class_names], np.int32)


def make(config, model, class_names):
    from actionclip_jax.objectives import Objective  # pylint: disable=import-outside-toplevel

    trained = tuple(class_names)

    def loss_fn(params, inputs, rng, context):
        del context
        logits, _ = model.apply(
            {"params": params}, inputs["video"], train=True, rngs={"dropout": rng}
        )
        return losses.cross_entropy_loss(logits, inputs["label"]), {}

    def predict_fn(params, video, index):
        logits = model.apply({"params": params}, video, method=model.classify)  # [N, C_trained]
        return logits.astype(jnp.float32)[:, None, index]  # [N, 1, C]: one "template"

    return Objective(
        name="classifier",
        loss_fn=loss_fn,
        train_context=lambda names: {},
        class_info=lambda names: class_index(names, trained),
        classes_fn=lambda params, index: index,
        predict_fn=predict_fn,
        param_groups=(("classifier", r"classifier/.*", float(config.optim.fusion_ratio)),),
        with_text=False,
        scores_unseen_classes=False,
        num_templates=0,
    )
