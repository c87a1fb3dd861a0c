"""Model families; importing this package fills the registry."""

from mgcompile.models import resnet  # noqa: F401
