"""Audit: counts per node, level, step and stage, against the base network and the paper."""

from mgcompile.audit.report import audit, format_audit

__all__ = ["audit", "format_audit"]
