"""The HTML report: self-contained, rendered by a real browser (headless Chromium with every host
name unresolvable, so anything fetched from the network would be missing), and the comparison of
two runs. A screenshot is kept in test-artifacts/."""

import json
import re
import shutil
import subprocess
from pathlib import Path

from steep.cli import main

from conftest import CHROMIUM_FLAGS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is needed (make test installs it)"
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180)


def test_report_renders_offline_in_a_browser_and_runs_compare(project, tmp_path, capsys):
    assert main(["run", str(project / "steep.yaml")]) == 0
    run = project / "runs" / "t"
    html = (run / "report.html").read_text()
    # nothing to fetch: no external src/href, no url() but in-page references (SVG clip paths)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html) and not re.search(r"url\((?!#)", html)
    page = f"file://{run / 'report.html'}"
    dom = chromium(tmp_path / "profile", "--dump-dom", page).stdout
    for expected in ("steep report: t", "tuned+rag", "tuned+oracle", "Retrieval", "General ability (forgetting)",
                     "Data lineage", "Training loss", "What is the hometown of Ada Quill?", "after decontamination"):
        assert expected in dom, expected
    assert dom.count("<svg") >= 2  # the per-kind bars and the loss curve
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2600", page)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    other = project / "runs" / "t2"
    shutil.copytree(run, other)
    results = json.loads((other / "eval" / "results.json").read_text())
    results["conditions"]["tuned"]["contained"] = results["conditions"]["tuned"]["contained"] + 0.25
    (other / "eval" / "results.json").write_text(json.dumps(results))
    capsys.readouterr()
    assert main(["report", str(run), str(other), "-o", str(tmp_path / "compare.html")]) == 0
    table = capsys.readouterr().out
    assert "| condition | t | t2 | change |" in table and re.search(r"\| tuned \| [\d.]+% \| [\d.]+% \| \+25\.0% \|", table)
    assert "+25.0 points" in chromium(tmp_path / "profile", "--dump-dom", f"file://{tmp_path / 'compare.html'}").stdout
