"""Audit: counts per node, level, step and stage, against the base network and the paper."""

from mgcompile.audit.activations import activation_elements
from mgcompile.audit.report import audit, format_audit
from mgcompile.audit.sweep import parse_widths, sweep_width

__all__ = ["activation_elements", "audit", "format_audit", "parse_widths", "sweep_width"]
