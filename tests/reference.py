"""Reference implementations (PyTorch / OpenAI CLIP) that the tests compare against.

Modules of the installed ``openai-clip`` package are loaded by file path, never with
``import clip``: the package ``__init__`` imports torchvision, which may be unusable here.
"""

import functools
import importlib.util
import os


@functools.cache
def reference_tokenizer():
    """Returns OpenAI CLIP's ``SimpleTokenizer``, loaded from ``clip/simple_tokenizer.py``.

    ``find_spec`` on the top-level package only locates it; ``clip/__init__.py`` is not run.
    """
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("openai-clip is not installed (pip install openai-clip)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "simple_tokenizer.py")
    module_spec = importlib.util.spec_from_file_location("_reference_clip_simple_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SimpleTokenizer()
