"""Finding layer kinds defined outside the package: a module named with --plugin (or imported by
the user), and installed packages that declare the `rnncompile.layers` entry point group."""
from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path

from .errors import PluginError

ENTRY_POINT_GROUP = "rnncompile.layers"
_loaded_entry_points = False


def load_entry_points() -> list[str]:
    global _loaded_entry_points
    names = []
    if _loaded_entry_points:
        return names
    _loaded_entry_points = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # a broken plugin must not hide behind a traceback
            raise PluginError(f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {e}",
                              where=f"entry point {ENTRY_POINT_GROUP}") from None
        names.append(ep.name)
    return names


def load_plugin(name: str) -> None:
    """Import a plugin module by dotted name, or a .py file by path. Importing it registers its
    layer kinds (their `@register` decorators run)."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise PluginError("plugin file not found", where=f"--plugin {name}")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            importlib.import_module(name)
    except PluginError:
        raise
    except ImportError as e:
        raise PluginError(f"cannot import plugin module: {e}", where=f"--plugin {name}") from None
    except Exception as e:
        raise PluginError(f"plugin module failed while importing: {type(e).__name__}: {e}",
                          where=f"--plugin {name}") from None


import importlib.util  # noqa: E402
