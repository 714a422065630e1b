"""The Snakemake workflow catalog's files: .snakemake-workflow-catalog.yml and config/README.md.

Each flag the catalog file names must be one of Snakemake's options (from Snakemake's own
argument parser) and appear in the README; each path it names must exist; what it claims
(conda deployment, a report) must hold for the rules; config/README.md must describe every
configuration file and point at the schema for every top-level key.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from snakemake.cli import get_argument_parser

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / ".snakemake-workflow-catalog.yml"
SCHEMA = REPO / "neurobolt" / "config.schema.yaml"


def _snakemake_options() -> set[str]:
    return {opt for action in get_argument_parser()._actions for opt in action.option_strings}


def test_catalog_file_has_the_catalogs_keys():
    usage = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    deployment = usage["software-stack-deployment"]
    assert set(deployment) == {"conda", "singularity", "singularity+conda"}
    assert all(isinstance(v, bool) for v in deployment.values())
    assert usage["report"] is True


def test_catalog_names_real_flags_and_paths():
    usage = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["usage"]
    text = f"{usage['mandatory-flags']['desc']} {usage['mandatory-flags']['flags']}"
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert {"--cores", "--configfile", "--profile"} <= flags
    options = _snakemake_options()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for flag in flags:
        assert flag in options, f"{flag} is not a snakemake option"
        assert flag in readme, f"{flag} is not in the README"
    paths = set(re.findall(r"(?:config|workflow)/[\w./-]*[\w]", text))
    assert {"config/config.yaml", "workflow/profiles/slurm", "config/README.md"} <= paths
    for path in paths:
        assert (REPO / path).exists(), path
    # --use-conda / --sdm conda, as the comment says, are snakemake options
    assert {"--use-conda", "--sdm"} <= options


def test_catalog_claims_hold_for_the_rules():
    usage = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["usage"]
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    if usage["software-stack-deployment"]["conda"]:
        env = yaml.safe_load((REPO / "envs" / "neurobolt.yaml").read_text())
        assert env["dependencies"]
        assert "--use-conda" in (REPO / "README.md").read_text()
    if usage["report"]:
        captions = re.findall(r'caption="\.\./report/([\w.]+)"', rules)
        assert len(captions) >= 5
        for caption in captions:
            assert (REPO / "workflow" / "report" / caption).is_file(), caption


def test_config_readme_covers_every_config_file_and_key():
    text = (REPO / "config" / "README.md").read_text(encoding="utf-8")
    assert "neurobolt/config.schema.yaml" in text
    for path in sorted((REPO / "config").glob("*.yaml")):
        assert f"config/{path.name}" in text, path.name
    keys = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))["properties"]
    for key in keys:
        assert re.search(rf"\| `{key}` \|.*\[`properties\.{key}`\]", text), key
    # the minimal change: the four keys that point the workflow at another dataset
    for needed in ("root:", "fmriprep_dir:", "enabled: false", "results_dir:"):
        assert needed in text


def test_readme_first_screen_commands_then_the_report_picture():
    """The two set-up commands first (.ci/run runs the second), then the report's picture."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [m.start() for m in re.finditer(r"^```bash$", text, flags=re.M)]
    picture = re.search(r"!\[[^\]]+\]\((docs/[\w.-]+\.png)\)", text)
    assert len(blocks) == 2 and picture and blocks[1] < picture.start()
    assert picture.start() < text.index("\n## ")  # on the first screen, before any section
    png = REPO / picture.group(1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < png.stat().st_size < 300_000
    for target in re.findall(r"\]\(([\w/.-]+\.md)\)", text[: text.index("\n## ")]):
        assert (REPO / target).is_file(), target
