"""Commands of families that need an optional dependency (a pip extra).

``command_or_placeholder(module, package, extra, family)`` returns the family's command
module when ``package`` is installed; otherwise a placeholder command of the same name that
prints one line naming the extra to install and exits 2, so the rest of the ``stegafast``
command works without it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from types import SimpleNamespace

from ..errors import UserError

__all__ = ["command_or_placeholder"]


def command_or_placeholder(module: str, package: str, extra: str, family: str):
    if importlib.util.find_spec(package) is not None:
        return importlib.import_module(module)

    def run(args: argparse.Namespace) -> int:
        raise UserError(f"stegafast {family} needs {package}: pip install 'stegafast[{extra}]'")

    def add_parser(sub) -> None:
        p = sub.add_parser(family, help=f"(needs the [{extra}] extra: {package} is not installed)")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=run)

    return SimpleNamespace(add_parser=add_parser)
