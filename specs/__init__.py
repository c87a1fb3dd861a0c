"""Spec files shipped with mgcompile (``paper/``: one per row of the paper's Tables 1 and 2)."""
