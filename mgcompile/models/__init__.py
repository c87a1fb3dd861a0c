"""Model families, one file each (timm style); importing this package registers them all.

Adding a family: a template in ``mgcompile/steps.py`` if its step is new, and one file
``models/<family>.py`` that builds the base IR and calls ``register_family`` and
``register_model``. Family files are discovered here, so nothing else lists them
(see ``docs/design.md``).
"""

import importlib
import pkgutil

from mgcompile.models.base import (FAMILIES, MODELS, Family, ModelEntry, family_of, family_of_module, graph_from_spec,
                                   graph_meta, register_family, register_model, uneven_policy)

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "layers") and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["FAMILIES", "MODELS", "Family", "ModelEntry", "family_of", "family_of_module", "graph_from_spec", "graph_meta",
           "register_family", "register_model", "uneven_policy"]
