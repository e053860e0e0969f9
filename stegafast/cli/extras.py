"""Commands of families that need an optional dependency (a pip extra).

``optional_command(module, package, extra, family)`` returns the family's command
module when ``package`` is installed; otherwise a command of the same name whose every use
prints one line naming the extra to install and exits 2, so the rest of the ``stegafast``
command works without it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from types import SimpleNamespace

from ..errors import UserError

__all__ = ["optional_command"]


def optional_command(module: str, package: str, extra: str, family: str):
    """The command module ``module`` if ``package`` imports, else a command that says to install ``[extra]``."""
    if importlib.util.find_spec(package) is not None:
        return importlib.import_module(module)

    def run(args: argparse.Namespace) -> int:
        raise UserError(f"stegafast {family} needs {package}: pip install 'stegafast[{extra}]'")

    def add_parser(sub) -> None:
        p = sub.add_parser(family, help=f"(needs the [{extra}] extra: {package} is not installed)")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=run)

    return SimpleNamespace(add_parser=add_parser)
