"""The layers of stegafast/DESIGN.md, checked on the source: no module below the
command layer imports it or the model families, not even lazily inside a
function, and the leaf modules (``stegafast.errors``, ``stegafast.config``)
import nothing of stegafast.

Every ``import`` and ``from ... import`` node of every module is read with
``ast`` (relative imports resolved against the module's package), so an
import hidden in a function body or under ``if TYPE_CHECKING`` counts too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "stegafast"

# Modules and packages below the command layer and the families: they may import neither.
LOWER_LAYERS = (
    "train",
    "nn",
    "ops",
    "entropy",
    "data",
    "metrics",
    "reference",
    "ecc",
    "backend",
    "_native",
    "errors",
    "device",
    "config",
    "color",
    "io",
)
# Leaf modules: they import nothing of stegafast, so every layer may import them.
LEAVES = ("errors.py", "config.py")
COMMAND_LAYER = "stegafast.cli"
FAMILIES = "stegafast.models"


def _module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path, root: Path) -> str:
    """The package a relative import in ``path`` starts from."""
    name = _module_name(path, root)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(path: Path, root: Path = PACKAGE_ROOT) -> list[tuple[str, int]]:
    """(absolute module name, line) of every module ``path`` (a file under the package
    folder ``root``) imports; ``from package import name`` gives both the package and
    package.name, since the name may be a submodule."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path, root).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE_ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _in_lower_layer(path: Path) -> bool:
    first = path.relative_to(PACKAGE_ROOT).with_suffix("").parts[0]
    return first in LOWER_LAYERS


def _violations(paths, forbidden: tuple[str, ...], root: Path = PACKAGE_ROOT) -> list[str]:
    """One line per import of a module within ``forbidden``, naming the importer and the line."""
    return [
        f"{_module_name(path, root)} (line {line}) imports {module}"
        for path in paths
        for module, line in imports_of(path, root)
        if any(_is_within(module, package) for package in forbidden)
    ]


def test_the_walk_sees_the_package():
    names = {_module_name(p) for p in _sources()}
    assert {"stegafast.train.engine", "stegafast.cli", "stegafast.errors", "stegafast.models.stego.cli"} <= names
    assert sum(_in_lower_layer(p) for p in _sources()) > 40


def test_relative_and_lazy_imports_are_resolved(tmp_path):
    root = tmp_path / "stegafast"
    pkg = root / "train"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import engine\n")
    module = pkg / "engine.py"
    module.write_text("def f():\n    from ..cli.common import UserError\n    import stegafast.models.stego\n")
    assert ("stegafast.train.engine", 1) in imports_of(pkg / "__init__.py", root)
    assert _violations([module], (COMMAND_LAYER, FAMILIES), root) == [
        "stegafast.train.engine (line 2) imports stegafast.cli.common",
        "stegafast.train.engine (line 2) imports stegafast.cli.common.UserError",
        "stegafast.train.engine (line 3) imports stegafast.models.stego",
    ]


def test_lower_layers_import_neither_the_commands_nor_the_families():
    lower = [p for p in _sources() if _in_lower_layer(p)]
    bad = _violations(lower, (COMMAND_LAYER, FAMILIES))
    assert not bad, "below the command layer, modules import it or a family:\n" + "\n".join(bad)


def test_only_a_familys_cli_module_imports_the_command_layer():
    family_modules = [p for p in (PACKAGE_ROOT / "models").rglob("*.py") if p.name != "cli.py"]
    bad = _violations(family_modules, (COMMAND_LAYER,))
    assert not bad, "family modules other than cli.py import the command layer:\n" + "\n".join(bad)


def test_leaf_modules_import_nothing_of_stegafast():
    bad = _violations([PACKAGE_ROOT / leaf for leaf in LEAVES], ("stegafast",))
    assert not bad, "leaf modules must import nothing of stegafast:\n" + "\n".join(bad)
