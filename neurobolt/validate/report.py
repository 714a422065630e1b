"""The table of problems: :class:`Finding`, :class:`Report`, :class:`ValidationError`."""

from __future__ import annotations

import logging
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

logger = logging.getLogger("neurobolt.validate")

DATASET = "(dataset)"
CONFIG = "(config)"
OUTPUTS = "(outputs)"


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, what it is, and how to fix it."""

    run: str
    file: str
    problem: str
    fix: str
    severity: str = "error"  # "error" stops the work; "warning" is listed only


@dataclass
class Report:
    """Everything :func:`validate_dataset` found."""

    root: str
    runs: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Finding]:
        """The findings that stop the work."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that are only reported."""
        return [f for f in self.findings if f.severity != "error"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def table(self) -> pd.DataFrame:
        """One row per finding: severity, run, file, problem, fix."""
        rows = [asdict(f) for f in self.findings]
        return pd.DataFrame(rows, columns=["severity", "run", "file", "problem", "fix"])

    def format(self, *, width: int = 100) -> str:
        """The report as text: a summary line, then one block per finding.

        Each block is a row of the table: severity, run and file on the first line
        (the file is never wrapped, so it can be copied), then the problem and the fix.
        """
        head = (
            f"neurobolt validate: {self.root}: {len(self.runs)} run(s) checked in"
            f" {self.seconds:.1f} s: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        if not self.findings:
            return head + "\nNo problems found."
        lines = [head, "", "severity  run | file", "          problem", "          how to fix"]
        order = sorted(self.findings, key=lambda f: (f.severity != "error", f.run, f.file))
        for f in order:
            lines.append("-" * min(width, 100))
            lines.append(f"{f.severity.upper():<9} {f.run} | {f.file}")
            for label, text in (("problem: ", f.problem), ("fix:     ", f.fix)):
                if not text:
                    continue
                wrapped = textwrap.wrap(
                    " ".join(text.split()),
                    width=max(width - 19, 40),
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                lines.append(" " * 10 + label + wrapped[0])
                lines += [" " * 19 + w for w in wrapped[1:]]
        if self.errors:
            lines += ["", f"{len(self.errors)} error(s): nothing was run. Fix them and rerun."]
        return "\n".join(lines)


class ValidationError(ValueError):
    """The inputs have problems (``report`` lists them all)."""

    def __init__(self, report: Report):
        super().__init__(report.format())
        self.report = report


def _rel(path, root: Path) -> str:
    """``path`` relative to the dataset when inside it, else absolute."""
    path = Path(path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _strip(message: str, *paths) -> str:
    """An error message without the leading ``<path>: `` (the table has a file column)."""
    text = str(message).strip()
    for path in paths:
        for prefix in (f"{path}: ", f"{Path(path).name}: "):
            if text.startswith(prefix):
                text = text[len(prefix) :]
    return text
