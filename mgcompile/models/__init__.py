"""Model families; importing this package fills the registry."""

from mgcompile.models import mobilenet, resnet  # noqa: F401
