"""LLM-ready export (issue 14): token tables → Megatron indexed datasets or nanoGPT-style flat token files, with
`index.parquet` mapping every token back to its source audio and `meta.json` describing the files.

`plan_export` + `run_export` are the job; `ExportWindows` reads the result as frame-aligned training windows.
"""

from pipeline.export.config import DocumentUnit, ExportConfig, ExportFormat, ExportOrder, SpecialIds
from pipeline.export.job import ExportPlan, ExportSummary, plan_export, run_export

__all__ = [
    "DocumentUnit",
    "ExportConfig",
    "ExportFormat",
    "ExportOrder",
    "ExportPlan",
    "ExportSummary",
    "SpecialIds",
    "plan_export",
    "run_export",
]
