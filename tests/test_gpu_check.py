"""`benchmarks/gpu_check.py --device cpu --quick`: the GPU check's code path, on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_quick_cpu_form_fills_every_section(tmp_path):
    out = tmp_path / "check.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--json",
                        str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())["rows"]
    by = {(row["section"], row["item"]): row["value"] for row in rows}
    assert not [row for row in rows if row["section"] == "error"], rows
    assert by[("env", "torch")] == __import__("torch").__version__
    for precision in ("fp32", "bf16"):
        assert by[("hubert", f"1 layers {precision}")] > 0
        assert by[("train", f"tiny batch 1 {precision} step")] > 0
    assert by[("infer", "tiny score ml:2 RTF")] > 0  # each family with its default sampler,
    assert by[("infer", "tiny flow euler:2 acoustic RTF")] > 0  # at most the plan's 2 steps
    assert by[("infer", "tiny consistency consistency:1 RTF")] > 0  # its default: one step
    for case in ("nsf-bigvgan", "diffwave-6", "diffwave-50"):
        assert by[("vocoder", f"{case} fp32 on 0.5 s RTF")] > 0
    assert str(by[("ddp", "nccl 2 processes")]).startswith("skipped")
    assert "| section | item | value | unit |" in r.stdout  # the table
