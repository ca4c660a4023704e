"""Console entry points of an installed copy (``pip install -e .``): ``i2i-train``, ``i2i-test``, ``i2i-fid``,
``i2i-rescore``, ``i2i-export``.

``train.py``, ``test.py`` and ``export.py`` stay top-level scripts (``python train.py ...`` as in the
CycleGAN/CUT code bases) and are installed beside the packages. They are loaded here by file path, not
imported by name: ``import test`` finds Python's own ``test`` package first.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(name: str) -> ModuleType:
    """The top-level script ``<name>.py`` beside the ``util`` package, as a module."""
    path = os.path.join(ROOT, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"unpaired_i2i_{name}", path)
    if spec is None or not os.path.isfile(path):
        raise SystemExit(f"error: {path} is missing: reinstall the package (pip install -e .)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train() -> int:
    return script("train").main()


def test() -> int:
    return script("test").main()


def export() -> int:
    return script("export").main()


def fid() -> int:
    from util.metrics.fid import main

    return main()


def rescore() -> int:
    from util.metrics.rescore import main

    return main()
