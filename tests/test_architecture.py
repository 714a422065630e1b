"""The house rules of ARCHITECTURE.md, checked on the source (fast: no workflow runs).

Layers: workflow rules -> workflow/scripts/_helpers.run_job -> neurobolt.jobs.<rule> -> stage
modules -> utilities. These tests read the files with ``ast`` and regular expressions; only
the public-API test and the simulator's no-torch test import neurobolt.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "neurobolt"
WORKFLOW = REPO / "workflow"
SCRIPTS = WORKFLOW / "scripts"

MAX_LINES = 700
#: The workflow scripts whose jobs cap the thread pools first (run_job's limit_threads).
LIMIT_THREADS = {"train", "evaluate", "predict", "train_transfer"}
#: Modules outside neurobolt.jobs that may call a job (the command line).
JOB_CALLERS = {"neurobolt.cli", "neurobolt.app"}
#: The public API: these names import from these paths (re-exported where they moved).
PUBLIC_API = [
    "neurobolt.eeg.gradient.remove_gradient",
    "neurobolt.eeg.bcg.detect_r_peaks",
    "neurobolt.eeg.bcg.remove_bcg",
    "neurobolt.eeg.clean.clean_raw",
    "neurobolt.fmri.signals.extract_roi_signals",
    "neurobolt.models.build_model",
    "neurobolt.models.labram.load_labram_checkpoint",
    "neurobolt.simulate.simulate_dataset",
    "neurobolt.evaluate.permutation_p",
    "neurobolt.store.WindowStore",
    "neurobolt.store.WindowDataset",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


#: module name -> file, for every module of the package
MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement, at module level or in a function; not under TYPE_CHECKING
    (those never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute dotted name, line) of everything a module imports: for ``from X import y``
    both ``X.y`` (a submodule, if it is one) and ``X``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        for alias in node.names:
            out.append((f"{target}.{alias.name}", node.lineno))
        out.append((target, node.lineno))
    return out


def _resolve(name: str) -> str | None:
    """The package module a dotted import name loads (its longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def _import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported package module: line of the import}."""
    graph = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for name, line in _imported_names(module, path):
            target = _resolve(name)
            if target and target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected
    component of more than one module (Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(set(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:  # the shortest way back to the component's first module
        start = min(component)
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            nxt = sorted(s for s in graph[path[-1]] if s in component)
            if start in nxt:
                cycles.append([*path, start])
                break
            for succ in nxt:
                if succ not in seen:
                    seen.add(succ)
                    paths.append([*path, succ])
    return cycles


def test_no_import_cycle_inside_the_package():
    """Module-level and function-level imports both count (a function-level import only
    hides a cycle until the function runs)."""
    graph = _import_graph()
    described = []
    for cycle in _cycles(graph):
        steps = [
            f"{a} ({MODULES[a].relative_to(REPO)}:{graph[a][b]}) -> {b}"
            for a, b in zip(cycle, cycle[1:], strict=False)
        ]
        described.append("\n    ".join(steps))
    assert not described, "import cycles:\n  " + "\n  ".join(described)


def test_the_cycle_finder_reports_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_module_is_over_700_lines():
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for path in MODULES.values()
    }
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


SYS_PATH_EDIT = re.compile(
    r"\bsys\s*\.\s*path\s*(\.\s*(insert|append|extend|remove)\b|\[|\+?=)"
    r"|\bsite\s*\.\s*addsitedir\b|\bPYTHONPATH\b"
)


def test_nothing_under_workflow_edits_sys_path():
    """The package is installed (`pip install -e .`, the conda env's post-deploy step)."""
    files = [REPO / "Snakefile", *sorted(p for p in WORKFLOW.rglob("*") if p.is_file())]
    edits = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in files
        if path.suffix in {"", ".py", ".smk", ".sh"}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SYS_PATH_EDIT.search(line) and not line.lstrip().startswith("#")
    ]
    assert not edits, "\n".join(edits)


def test_the_schema_ships_inside_the_package():
    import neurobolt.config

    schema = PACKAGE / "config.schema.yaml"
    assert schema.is_file()
    assert neurobolt.config.SCHEMA_PATH == schema
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "config.schema.yaml" in package_data["package-data"]["neurobolt"]
    assert not (WORKFLOW / "schemas").exists(), "a second copy of the schema"
    mentions = [
        str(path.relative_to(REPO))
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file()
        and path.suffix in {".py", ".yaml", ".yml", ".json", ".txt", ".md"}
        and "workflow/schemas" in path.read_text(encoding="utf-8")
    ]
    assert not mentions, f"the library reads the workflow's folder: {mentions}"


@pytest.mark.parametrize("dotted", PUBLIC_API)
def test_public_name_imports_from_its_documented_path(dotted):
    module, _, name = dotted.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name)), dotted


def test_stage_modules_never_import_the_jobs_and_nothing_imports_snakemake():
    graph = _import_graph()
    wrong = [
        f"{module} imports {target} ({MODULES[module].relative_to(REPO)}:{line})"
        for module, edges in sorted(graph.items())
        if not (module == "neurobolt.jobs" or module.startswith("neurobolt.jobs."))
        and module not in JOB_CALLERS
        for target, line in edges.items()
        if target == "neurobolt.jobs" or target.startswith("neurobolt.jobs.")
    ]
    for module, path in MODULES.items():
        for name, line in _imported_names(module, path):
            if name.split(".")[0] == "snakemake":
                wrong.append(f"{module} imports snakemake ({path.relative_to(REPO)}:{line})")
    assert not wrong, "\n".join(wrong)


WINDOW_LITERAL = re.compile(
    r"""\bwindow_s\b\s*(:\s*[^=\n]+)?=(?!=)\s*[-+]?\d"""  # window_s=16, window_s: float = 16.0
    r"""|["']window_s["']\s*[:,]\s*[-+]?\d"""  # {"window_s": 16}, .get("window_s", 16)
    r"""|\bWINDOW_S\b\s*(:\s*[^=\n]+)?=(?!=)\s*[-+]?\d""",  # WINDOW_S = 16
    flags=re.IGNORECASE,
)


def test_the_window_length_is_written_once_in_the_schema():
    """`store.window_s` (16 s) has its default in the schema only: the library reads it with
    `neurobolt.config.defaults("store.window_s")` or takes it as a required keyword."""
    import neurobolt.config

    assert neurobolt.config.defaults("store.window_s") == 16
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in MODULES.values()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WINDOW_LITERAL.search(line)
    ]
    assert not found, "window_s given a number outside the schema:\n" + "\n".join(found)


def test_the_window_literal_pattern_finds_each_form():
    for line in ("window_s: float = 16.0,", "window_s=16", '{"window_s": 16}', "WINDOW_S = 16"):
        assert WINDOW_LITERAL.search(line), line
    for line in ("window_s: float,", "window_s=window_s", "if window_s == 16:", "n = 16"):
        assert not WINDOW_LITERAL.search(line), line


def _script_call(path: Path) -> ast.Call | None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_job":
            return node
    return None


SCRIPT_NAMES = sorted(p.stem for p in SCRIPTS.glob("*.py") if p.name != "_helpers.py")


@pytest.mark.parametrize("stem", SCRIPT_NAMES)
def test_each_workflow_script_only_hands_its_job_to_run_job(stem):
    """``from _helpers import run_job`` + ``run_job(snakemake, "<stem>")`` (+ a docstring):
    the job lives in neurobolt/jobs/<stem>.py as ``run(inputs, outputs, params, *, threads)``.
    """
    path = SCRIPTS / f"{stem}.py"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) <= 6, f"{path.relative_to(REPO)}: {len(lines)} non-blank lines"
    call = _script_call(path)
    assert call is not None, f"{path.relative_to(REPO)} does not call run_job"
    assert [ast.literal_eval(arg) for arg in call.args[1:]] == [stem]
    keywords = {k.arg: k.value for k in call.keywords}
    assert set(keywords) <= {"limit_threads", "params"}, sorted(keywords)
    limit = ast.literal_eval(keywords["limit_threads"]) if "limit_threads" in keywords else False
    assert limit == (stem in LIMIT_THREADS), stem
    job = PACKAGE / "jobs" / f"{stem}.py"
    assert job.is_file(), f"no job module {job.relative_to(REPO)}"
    tree = ast.parse(job.read_text(encoding="utf-8"))
    run = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"), None)
    assert run is not None, f"{job.relative_to(REPO)} has no run()"
    assert [a.arg for a in run.args.args] == ["inputs", "outputs", "params"]
    assert [a.arg for a in run.args.kwonlyargs] == ["threads"]


def test_every_rule_script_exists_and_every_script_has_a_rule():
    named = set()
    for path in sorted((WORKFLOW / "rules").glob("*.smk")):
        named |= set(re.findall(r'"\.\./scripts/(\w+)\.py"', path.read_text(encoding="utf-8")))
    assert named == set(SCRIPT_NAMES)


def _reaches(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, {}))
    return seen


def test_the_simulator_never_imports_torch():
    """Neither at import (a fresh interpreter) nor in any function (the static import graph
    of the simulator and its job, function-level imports included)."""
    graph = _import_graph()
    starts = [m for m in MODULES if m.startswith("neurobolt.simulate")]
    starts += [m for m in ("neurobolt.jobs.simulate",) if m in MODULES]
    torch_users = {
        module
        for module, path in MODULES.items()
        if any(name.split(".")[0] == "torch" for name, _ in _imported_names(module, path))
    }
    reached = set().union(*(_reaches(graph, s) for s in starts))
    assert not reached & torch_users, f"the simulator reaches torch via {reached & torch_users}"
    code = "import sys\n" + "".join(f"import {m}\n" for m in sorted(starts))
    code += "assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_architecture_md_names_existing_paths_and_every_job():
    """ARCHITECTURE.md matches the tree: each path it writes in backticks exists, and it
    names every job module."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:neurobolt|workflow|tests|envs|config)/[\w./-]*)`", text))
    missing = sorted(p for p in paths if "<" not in p and not (REPO / p).exists())
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"
    jobs = sorted(m.rpartition(".")[2] for m in MODULES if m.startswith("neurobolt.jobs."))
    unnamed = [job for job in jobs if not re.search(rf"\bjobs[./]{job}\b", text)]
    assert not unnamed, f"job modules ARCHITECTURE.md does not name: {unnamed}"


def test_architecture_md_names_every_module():
    """The module map lists every module under neurobolt/ (``__init__`` of packages aside)."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    unnamed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if path.name == "__init__.py" and rel != "models/__init__.py":
            continue
        if f"`{rel}`" not in text and f"`neurobolt/{rel}`" not in text:
            unnamed.append(rel)
    assert not unnamed, f"modules ARCHITECTURE.md does not name: {unnamed}"


#: Parameters that share a name and value with a config key but are not that setting.
NOT_CONFIG_DEFAULTS = {("eeg/bcg.py", "_components", "seed")}


def _schema_leaves() -> dict[str, list[tuple[str, object]]]:
    import neurobolt.config

    leaves: dict[str, list[tuple[str, object]]] = {}

    def walk(value, dotted):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{dotted}.{key}" if dotted else key)
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            leaves.setdefault(dotted.rpartition(".")[2], []).append((dotted, value))

    walk(neurobolt.config.defaults(), "")
    return leaves


def test_no_function_default_repeats_a_config_default():
    """A keyword default that is also a config default reads the schema
    (``nbconfig.defaults("eeg.gradient.window")``) instead of repeating its value: a
    parameter named like a config key with that key's default value as a literal fails."""
    leaves = _schema_leaves()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            positional = args.posonlyargs + args.args
            tail = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(tail, args.defaults, strict=True))
            pairs += [
                (a, d)
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if d is not None
            ]
            for arg, default in pairs:
                if (rel, node.name, arg.arg) in NOT_CONFIG_DEFAULTS:
                    continue
                if not isinstance(default, ast.Constant) or isinstance(default.value, bool):
                    continue
                for key, value in leaves.get(arg.arg, []):
                    if default.value == value:
                        found.append(
                            f"neurobolt/{rel}:{node.lineno} {node.name}({arg.arg}) = {key}"
                        )
    assert not found, "defaults written again outside the schema:\n" + "\n".join(found)
