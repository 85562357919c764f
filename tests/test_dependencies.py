"""`pip install -e .` installs everything the two packages import.

Every import in `actionclip_jax/` and `data_pipeline/` (function-level ones too) is read with
`ast` and mapped to the distribution that provides it (`importlib.metadata.
packages_distributions()`); that distribution must be in `[project.dependencies]` of
pyproject.toml and pinned in requirements.txt, unless the import is listed in OPTIONAL below with
the reason it is optional.
"""

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("actionclip_jax", "data_pipeline")
# Top-level modules of this repository (configs/ is imported by path, not installed).
LOCAL = {"actionclip_jax", "data_pipeline", "configs"}

# Imports that need not be runtime dependencies: `{module: (distribution an extra installs, why)}`.
OPTIONAL = {
    "torch": (
        "torch",
        "only to read PyTorch .pt files (weights.py imports it inside the reader, with an "
        "error that says `pip install -e '.[torch]'`); converted directories load without it",
    ),
}

# Import names whose distribution is named differently, for modules that are not installed in
# the environment running the test (packages_distributions() only knows installed ones).
KNOWN_DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python-headless", "absl": "absl-py"}


def normalize(name: str) -> str:
    """PEP 503 normalisation: `Orbax_Checkpoint` and `orbax-checkpoint` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0])


def imported_modules(source: str, filename: str = "<source>") -> set[str]:
    """Top-level names of the absolute imports in `source` (at any depth of the code)."""
    names = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(names, local=frozenset(LOCAL)) -> set[str]:
    return {n for n in names if n not in local and n not in sys.stdlib_module_names}


def undeclared_imports(
    imports: dict[str, set[str]], declared: set[str], optional=OPTIONAL
) -> dict[str, str]:
    """`{module: why}` for third-party imports that no declared distribution provides.

    Args:
      imports: `{module: files that import it}`.
      declared: normalised distribution names of `[project.dependencies]`.
      optional: modules allowed to be missing (with the reason).
    """
    owners = importlib.metadata.packages_distributions()
    problems = {}
    for module, files in sorted(imports.items()):
        if module in optional:
            continue
        provided_by = {normalize(d) for d in owners.get(module, [])}
        if not provided_by:
            provided_by = {normalize(KNOWN_DISTRIBUTIONS.get(module, module))}
        if not provided_by & declared:
            problems[module] = (
                f"imported in {', '.join(sorted(files))}, provided by "
                f"{' or '.join(sorted(provided_by))}, which [project.dependencies] lacks"
            )
    return problems


def package_imports() -> dict[str, set[str]]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for module in third_party(imported_modules(path.read_text(), rel)):
                found.setdefault(module, set()).add(rel)
    return found


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared_dependencies() -> set[str]:
    return {requirement_name(r) for r in project()["dependencies"]}


def pinned_requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalize(name)] = version.strip()
    return pins


# ------------------------------------------------------------------------------------------ tests


def test_every_import_of_the_packages_is_a_declared_dependency():
    imports = package_imports()
    assert "jax" in imports and "grain" in imports  # the scan finds imports at all
    problems = undeclared_imports(imports, declared_dependencies())
    assert not problems, "\n".join(f"{m}: {why}" for m, why in problems.items())


def test_optional_imports_are_only_function_level():
    # An optional import at module level would make the module fail to import without it.
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module level only
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = imported_modules(ast.unparse(node))
                    assert not names & set(OPTIONAL), f"{path}: {ast.unparse(node)}"


def test_every_dependency_is_pinned_in_requirements_txt():
    pins = pinned_requirements()
    missing = sorted(declared_dependencies() - set(pins))
    assert not missing, f"requirements.txt lacks pins for {missing}"
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+]*", v) for v in pins.values()), pins


def test_every_optional_import_is_in_an_extra():
    extras = {
        requirement_name(r) for reqs in project()["optional-dependencies"].values() for r in reqs
    }
    for module, (distribution, _) in OPTIONAL.items():
        assert normalize(distribution) in extras, f"{module} is optional but no extra installs it"


# The checker itself, on made-up modules: it must be able to fail.


def test_checker_flags_an_undeclared_import_at_any_depth():
    source = "import numpy\n\ndef f():\n    import yaml\n    from requests import get\n"
    imports = {m: {"fake.py"} for m in third_party(imported_modules(source))}
    problems = undeclared_imports(imports, {"numpy"})
    assert set(problems) == {"yaml", "requests"}
    assert "which [project.dependencies] lacks" in problems["yaml"]


def test_checker_maps_import_names_to_distributions():
    # `import orbax` is provided by orbax-checkpoint, `import PIL` by pillow.
    source = "import orbax.checkpoint as ocp\nfrom PIL import Image\nimport os\nfrom . import x\n"
    imports = {m: {"fake.py"} for m in third_party(imported_modules(source))}
    assert set(imports) == {"orbax", "PIL"}  # stdlib and relative imports are skipped
    assert undeclared_imports(imports, {"orbax-checkpoint", "pillow"}) == {}
    assert set(undeclared_imports(imports, {"pillow"})) == {"orbax"}


def test_checker_allows_listed_optional_imports_only():
    imports = {"torch": {"fake.py"}}
    assert undeclared_imports(imports, set()) == {}
    assert set(undeclared_imports(imports, set(), optional={})) == {"torch"}


@pytest.mark.parametrize(
    "requirement, name",
    [("jax>=0.7", "jax"), ("etils[epath]", "etils"), ("Orbax_Checkpoint", "orbax-checkpoint"),
     ("av ; sys_platform == 'linux'", "av"), ("ml_collections", "ml-collections")],
)
def test_requirement_names_are_normalised(requirement, name):
    assert requirement_name(requirement) == name
