"""Import timm's Swin models on a machine without torchvision.

timm imports torchvision at package import time (FrozenBatchNorm2d, data transforms), and the only torchvision
wheels the registry has are CUDA builds that cannot load next to the CPU torch pinned here. The Swin models use
none of it, so while timm is imported every ``torchvision.*`` module is a placeholder whose attributes are inert
classes; afterwards the placeholders are removed again, so nothing else sees a torchvision.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types


class _Inert(type):
    """A class whose every attribute is another inert class (usable as a base, a dict key or a callable)."""

    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(name, (), {})


class _Placeholder(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(name, (), {})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Placeholder(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def import_timm_swin():
    """(SwinTransformer, SwinTransformerV2) classes of the installed timm."""
    if "timm.models.swin_transformer_v2" not in sys.modules:
        if importlib.util.find_spec("torchvision") is not None and "torchvision" not in sys.modules:
            import torchvision  # noqa: F401  (a real one, if it loads)
        finder = None if "torchvision" in sys.modules else _Finder()
        if finder is not None:
            sys.meta_path.insert(0, finder)
        try:
            import timm.models.swin_transformer  # noqa: F401
            import timm.models.swin_transformer_v2  # noqa: F401
        finally:
            if finder is not None:
                sys.meta_path.remove(finder)
                for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
                    del sys.modules[name]
    return (sys.modules["timm.models.swin_transformer"].SwinTransformer,
            sys.modules["timm.models.swin_transformer_v2"].SwinTransformerV2)
