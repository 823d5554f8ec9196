"""kao's optional extras: the parts of kao that need packages the default install leaves out.

`pip install kao` gives the library and the everyday commands; `kao[server]` adds `kao serve`,
`kao[postgres]` PostgreSQL galleries, `kao[eval]` the face_recognition baselines of `kao eval`
and `kao bench`, `kao[train]` the training scripts. `require` turns a missing extra into one
clear KaoError instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

from kao.errors import KaoError


class MissingExtraError(KaoError):
    """A feature needs an optional extra that is not installed; the message names the feature,
    the missing module and the pip command that installs it."""


def installed(module: str) -> bool:
    """True when the top-level module `module` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, feature: str, *modules: str) -> None:
    """Raise MissingExtraError unless every top-level module in `modules` is installed, e.g.
    ``require("server", "kao serve", "fastapi")`` raises "kao serve needs the server extra (no
    module fastapi): pip install 'kao[server]'"."""
    for module in modules:
        if not installed(module):
            raise MissingExtraError(
                f"{feature} needs the {extra} extra (no module {module}): "
                f"pip install 'kao[{extra}]'"
            )
