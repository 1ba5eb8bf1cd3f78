"""Import a user's Python file (a model factory, a benchmark file) as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_file(path: Path, module_name: str) -> ModuleType:
    """Execute ``path`` as module ``module_name`` (registered in ``sys.modules``).

    Raises ImportError when the file cannot be loaded as Python; exceptions raised by
    the file's own code propagate unchanged, for the caller to summarize.
    """
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
