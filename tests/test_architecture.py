"""The house keeps its shape: every import runs down the floors drawn in docs/architecture.md, no import circles,
one file per name, and each tools/ script is named as its command. Read with ``ast``, nothing is imported."""
import ast
import re
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "opensora_lite"
FLOOR_LINE = re.compile(r"^floor (\d+)\s+(.+)$")


def floors() -> dict:
    """unit -> floor, from the ``floor N  unit unit ...`` lines of docs/architecture.md (a unit is a subpackage
    ``models/`` or a top-level module ``config.py``)."""
    table = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        match = FLOOR_LINE.match(line.strip())
        if match:
            for unit in match[2].split():
                table[unit.rstrip("/").removesuffix(".py")] = int(match[1])
    return table


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set:
    """Every opensora_lite module ``path`` imports, at any depth of the file (lazy imports included)."""
    name = module_name(path)
    return imports_in(path.read_text(), name if path.name == "__init__.py" else name.rsplit(".", 1)[0])


def imports_in(source: str, package: str) -> set:
    """The opensora_lite modules that ``source``, a module of ``package``, imports (relative ones resolved)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t.startswith("opensora_lite") and module_exists(t)}
    return found


def module_exists(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def unit_of(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def graph() -> dict:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_the_floors_name_every_part_of_the_package():
    table = floors()
    units = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert units == set(table), f"drawn but missing: {set(table) - units}; not drawn: {units - set(table)}"


def test_every_import_runs_down():
    table = floors()
    upward = [f"{module} (floor {table[unit_of(module)]}) imports {target} (floor {table[unit_of(target)]})"
              for module, targets in graph().items() for target in targets
              if unit_of(target) != unit_of(module) and table[unit_of(target)] >= table[unit_of(module)]]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    edges = {m: {t for t in ts if t != m and not m.startswith(t + ".")} for m, ts in graph().items()}
    state, circles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(circles)


def test_one_file_per_name_and_tools_named_as_their_commands():
    names = [p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")}
    commands = {p.stem for p in (PACKAGE / "commands").glob("*.py")} - {"__init__"}
    assert tools == commands
    for stem in tools:
        assert f"opensora_lite.commands.{stem} import main" in (ROOT / "tools" / f"{stem}.py").read_text()


def test_the_checker_sees_a_lazy_relative_import():
    """The checker itself: an import inside a function counts, and a relative import is resolved."""
    found = imports_in("def f():\n    from ..training import train_loop\n", "opensora_lite.models")
    assert found == {"opensora_lite.training", "opensora_lite.training.train_loop"}
    assert floors()["training"] > floors()["models"]
