"""The lanes hold: `-m "not slow and not browser"` starts no Chromium and no server."""

import re

from conftest import ROOT


def test_files_that_drive_chromium_or_start_a_server_are_out_of_the_fast_lane():
    unmarked = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if re.search(r"\b(chromium|browser_page)\(", text) and "pytest.mark.browser" not in text:
            unmarked.append(f"{path.name}: drives Chromium, not marked browser")
        elif re.search(r"\bserve\(", text) and not re.search(r"pytest\.mark\.(browser|slow)", text):
            unmarked.append(f"{path.name}: starts a server, marked neither slow nor browser")
    assert unmarked == []
