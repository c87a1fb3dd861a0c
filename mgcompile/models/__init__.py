"""Model families, one file each (timm style); importing this package registers them all.

Adding a family: a template in ``mgcompile/steps.py`` if its step is new, and one file
here that builds the base IR, calls ``register_family`` and ``register_model``, and is
imported below (see ``docs/design.md``).
"""

from mgcompile.models.base import (FAMILIES, MODELS, Family, ModelEntry, family_of, graph_from_spec, graph_meta,
                                   register_family, register_model, uneven_policy)
from mgcompile.models import mobilenet, resnet  # noqa: F401,E402  (the families register themselves)

__all__ = ["FAMILIES", "MODELS", "Family", "ModelEntry", "family_of", "graph_from_spec", "graph_meta",
           "register_family", "register_model", "uneven_policy"]
