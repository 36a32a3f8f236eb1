"""Export an architecture (and its trained weights) as files that need only PyTorch.

``export(arch, out_dir)`` writes ``<name>.py``, ``.pt``, ``.ts``, ``.onnx`` and ``.json``
(see ``exporter``); the source is rendered in ``source``, the other formats are written
and checked in ``formats``, and ``files`` places them all or none.
"""

from __future__ import annotations

from nas.model.export.exporter import ExportResult, export
from nas.model.export.formats import FORMATS, require_onnx, write_onnx_file
from nas.model.export.source import export_name, render_source

__all__ = [
    "FORMATS",
    "ExportResult",
    "export",
    "export_name",
    "render_source",
    "require_onnx",
    "write_onnx_file",
]
