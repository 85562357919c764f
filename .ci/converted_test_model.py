"""Writes a converted checkpoint directory of configs/test.py's model, with random weights.

CI's no-extras stage runs `python -m actionclip_jax.predict` on it: without torch, a converted
directory is the checkpoint that predict reads (a training workdir is not one). The directory is
written with the same function as `python -m actionclip_jax.convert`, in the same format.

  python .ci/converted_test_model.py OUTPUT_DIR
"""

import pathlib
import sys

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # configs/ is not installed
from actionclip_jax import weights  # pylint: disable=wrong-import-position
from configs import test as test_config  # pylint: disable=wrong-import-position


def main(output: str) -> None:
    config = test_config.get_config()
    m, sizes = config.model, config.model.clip.to_dict()
    video = {
        "frame_stage": m.frame_stage,
        "head": m.head,
        "position_rows": m.position_rows,
        "conv1d_original": m.conv1d_original,
        "head_layers": m.head_layers,
        "num_frames": config.data.num_frames,
    }
    model = weights.build_actionclip(sizes, video)
    # Shapes only (no compilation, which would dominate this script), then small random values.
    inputs = weights.video_dummy_inputs(sizes, video["num_frames"])
    abstract = weights.abstract_params(model, *inputs)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda x: rng.normal(0, 0.02, x.shape).astype(x.dtype), abstract)
    meta = {"clip": sizes, "video": video, "source": "configs/test.py", "source_kind": "random"}
    weights.save_converted(output, meta, params)
    print(f"wrote {output}: configs/test.py's model, random weights")


if __name__ == "__main__":
    main(sys.argv[1])
