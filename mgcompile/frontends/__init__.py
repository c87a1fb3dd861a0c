"""Frontends that read a torch ``nn.Module`` into the IR (torch.fx import, step matching, opaque layers).

Spec files and registry names are built by the model families (``mgcompile/models``).
"""
