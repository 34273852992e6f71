"""The engine stands alone: importing nets loads neither Streamlit nor Plotly."""

import subprocess
import sys

from conftest import ROOT


def test_importing_the_engine_imports_no_ui():
    code = (
        "import sys, nets, nets.train, nets.gradcheck, nets.functions;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'plotly', 'pandas'));"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_pickle_or_eval_in_project_code():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    paths = [ROOT / line for line in tracked.stdout.splitlines() if not line.startswith("tests/")]
    assert any(p.name == "checkpoint.py" for p in paths)  # the scan sees the project's own files
    offenders = []
    for path in paths:
        text = path.read_text()
        for needle in ("import pickle", "allow_pickle=True", "eval(", "exec("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
