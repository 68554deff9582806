"""Self-describing model files.

* `model_file`: `export_checkpoint` (training checkpoint -> inference file), `import_gradsvc`
  (original Grad-SVC file + a preset -> gvc file), `load_exported` (file -> model, config, meta).
* `meta`: the `gvc` metadata entry (format version, architecture, config, feature settings).
"""

from gvc.export.meta import FORMAT_VERSION, META_KEY, architecture, build_meta, features_record
from gvc.export.model_file import ExportResult, export_checkpoint, import_gradsvc, load_exported

__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "ExportResult",
    "architecture",
    "build_meta",
    "export_checkpoint",
    "features_record",
    "import_gradsvc",
    "load_exported",
]
