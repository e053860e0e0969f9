"""Every public function, class and method in stegafast/ has a docstring.

The rule this test applies, read from the source with ``ast`` (nothing is imported):

- checked: module-level functions and classes whose name does not start with ``_``, and the methods (sync or
  async) of those classes whose name does not start with ``_``, in every module under stegafast/, private modules
  (``_native.py``, ``metrics/_checks.py``, ``ops/_validate.py``) included, since other layers call into them;
  nested functions and classes and the members of private classes are not part of the public surface and are not
  checked;
- excused: dunder methods (``__init__``, ``__call__``, ...: the class docstring says what they take), and a
  ``@property`` (or ``cached_property``) whose body is a single statement, since its name and the class
  docstring already say what it returns;
- NOT excused: overrides of a documented base-class method. ``nn.Module.forward``, ``Task.training_step``,
  ``Config.from_dict`` overrides must each say what they take and return (shapes, dtypes, ranges), because the
  base class cannot know them.

A failure lists ``file:line: name`` for each one missing, so they can be fixed in one pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "stegafast"

_PROPERTY_DECORATORS = {"property", "cached_property", "functools.cached_property"}


def _is_public(name: str) -> bool:
    return not name.startswith("_")


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {ast.unparse(d) for d in node.decorator_list}


def _is_one_line_property(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return bool(_decorator_names(node) & _PROPERTY_DECORATORS) and len(node.body) == 1


def _missing_in_class(cls: ast.ClassDef, prefix: str) -> list[tuple[int, str]]:
    missing = []
    for node in cls.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not _is_public(node.name):
            continue  # dunders start with "_" too, so they are excused here
        if _is_one_line_property(node):
            continue
        if ast.get_docstring(node) is None:
            missing.append((node.lineno, f"{prefix}{cls.name}.{node.name}"))
    return missing


def missing_docstrings(path: Path) -> list[tuple[int, str]]:
    """The ``(line, qualified name)`` of each public function, class or method in ``path`` lacking a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    missing = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _is_public(node.name):
            if ast.get_docstring(node) is None:
                missing.append((node.lineno, node.name))
        if isinstance(node, ast.ClassDef) and _is_public(node.name):
            missing.extend(_missing_in_class(node, ""))
    return missing


def _report(root: Path) -> list[str]:
    lines = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        lines.extend(f"{rel}:{line}: {name}" for line, name in missing_docstrings(path))
    return lines


def test_checker_finds_what_it_should(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "def public(): pass\n"
        "def _private(): pass\n"
        "def documented():\n    'Does a thing.'\n"
        "class Thing:\n"
        "    'A thing.'\n"
        "    def __init__(self): pass\n"
        "    def forward(self, x): return x\n"
        "    @property\n    def size(self): return 1\n"
        "    @property\n    def long(self):\n        y = 1\n        return y\n"
        "    def _helper(self): pass\n"
        "class _Hidden:\n    def method(self): pass\n",
        encoding="utf-8",
    )
    assert missing_docstrings(source) == [(1, "public"), (8, "Thing.forward"), (12, "Thing.long")]


def test_public_api_has_docstrings():
    missing = _report(PACKAGE)
    assert not missing, f"{len(missing)} public functions/classes/methods lack a docstring:\n" + "\n".join(missing)
