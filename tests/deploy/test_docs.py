"""The docs stay true and reachable: the site builds with `mkdocs build --strict` (a broken link or anchor fails),
the README stays short and every page it maps exists, the commands are written as they run (`uv run reelmill`),
there is one name for the API key, and the metric names the docs give are the ones `/metrics` exposes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SHELL_BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.M | re.S)
METRIC = re.compile(r'(Gauge|Counter|Histogram)MetricFamily\(\s*"(reelmill_\w+)"')


def markdown_files() -> list[Path]:
    return [README, ROOT / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]


def test_the_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in DOCS.glob("*.md"):
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.is_file(), f"{page.name} was not built (is it in mkdocs.yml's nav?)"


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_maps_every_page_and_its_links_resolve() -> None:
    """mkdocs checks the links inside docs/; the README and bench/README.md are outside it, so they are checked
    here: every relative link names a file that exists, and the README links every page of docs/."""
    for md in (README, ROOT / "bench" / "README.md"):
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (md.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{md.relative_to(ROOT)} links {target}, which does not exist"
    linked = {t.split("#", 1)[0] for t in LINK.findall(README.read_text(encoding="utf-8"))}
    missing = [p.name for p in DOCS.glob("*.md") if f"docs/{p.name}" not in linked]
    assert not missing, f"README.md's map of the docs leaves out {missing}"


def test_commands_are_written_as_they_run() -> None:
    """`reelmill` is not on PATH after `make run` (it lives in .venv): shell examples say `uv run reelmill`, and the
    API key has one name everywhere (REELMILL_API_KEY)."""
    bare = []
    for md in markdown_files():
        text = md.read_text(encoding="utf-8")
        assert not re.search(r"\bREELMILL_KEY\b", text), f"{md.name} says REELMILL_KEY, not REELMILL_API_KEY"
        for block in SHELL_BLOCK.findall(text):
            for line in block.splitlines():
                if re.match(r"\s*(\$\s*)?reelmill\s", line):
                    bare.append(f"{md.name}: {line.strip()}")
    assert not bare, "write `uv run reelmill`:\n" + "\n".join(bare)


def test_the_metric_names_in_the_docs_are_the_exposed_ones() -> None:
    """prometheus_client exposes a counter family `x` as `x_total`; the docs must give the exposed name."""
    source = "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "services" / "api").glob("metrics*.py")))
    families = METRIC.findall(source)
    assert families, "no metric families found in services/api/metrics*.py"
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    for kind, name in families:
        exposed = f"{name}_total" if kind == "Counter" else name
        assert f"`{exposed}`" in operations, f"docs/operations.md does not list {exposed}"
    documented = set(re.findall(r"`(reelmill_\w+)`", operations))
    exposed_names = {f"{n}_total" if k == "Counter" else n for k, n in families}
    unknown = documented - exposed_names
    assert not unknown, f"docs/operations.md lists metrics that do not exist: {unknown}"
