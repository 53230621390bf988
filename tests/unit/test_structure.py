"""The package's shape (docs/architecture.md), checked from the source
alone: no import cycle (function-level imports included), the agents'
runtime apart from the tools and the lab, no module too long to read.

Nothing is imported: every module under infrapower/ is parsed with `ast`,
so a cycle that only shows on one code path is found all the same.
"""

import ast
from pathlib import Path
from types import MappingProxyType

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "infrapower"
PACKAGE = PACKAGE_DIR.name
MAX_LINES = 650

# What the installed agents run: it must not drag in the CLIs, the
# PowerChain, the lab or the table generator (slower imports, and a tool's
# bug must not reach a fence action).  `infrapower.tables` is the loader
# (tables/__init__.py) only.
RUNTIME_MODULES = frozenset({"agent", "fence", "options", "errors", "ports", "resolve", "tables", "ciphers"})
RUNTIME_PACKAGES = frozenset({"nut", "snmp", "ipmi", "nutdriver"})
TOOL_MODULES = frozenset({"tables.generate", "tables.cparse", "tables.ctokens", "tables.cpreproc"})
TOOL_PACKAGES = frozenset({"cli", "lab", "chain", "scan", "nutconf", "publish", "health"})

# Known modules over MAX_LINES, each being split by a change in progress;
# remove an entry when its module is split.
KNOWN_LONG = MappingProxyType({})


def module_name(path):
    """`infrapower.x.y` for infrapower/x/y.py; a package's __init__ is the
    package itself (its own node in the graph)."""
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules():
    return {
        module_name(path): path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _resolve(name, modules):
    """The module `name` stands for: itself, or its nearest enclosing
    module (`infrapower.x.SOMETHING` is a name in infrapower.x)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(name, path, modules):
    """Every infrapower module `name` imports, at any level of the file."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Relative: from the module's package (its own name for an
                # __init__), one package up per extra dot.
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            # `from infrapower.x import y` imports module infrapower.x.y
            # when there is one, else the name y from infrapower.x.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(f"{PACKAGE}."):
                resolved = _resolve(target, modules)
                if resolved and resolved != name:
                    found.add(resolved)
    return found


def import_graph():
    modules = all_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}  # module -> "open" while on the DFS stack, "done" after
    stack = []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _relative(module):
    return module[len(PACKAGE) + 1:] if module.startswith(f"{PACKAGE}.") else ""


def is_runtime(module):
    relative = _relative(module)
    return relative in RUNTIME_MODULES or relative.split(".")[0] in RUNTIME_PACKAGES


def is_tool(module):
    relative = _relative(module)
    return relative in TOOL_MODULES or relative.split(".")[0] in TOOL_PACKAGES


def test_the_graph_sees_the_package():
    """Guards the checks below against passing on an empty or misread tree."""
    graph = import_graph()
    assert f"{PACKAGE}.fence" in graph and f"{PACKAGE}.lab" in graph
    assert f"{PACKAGE}.errors" in graph[f"{PACKAGE}.fence"]


def test_find_cycle_finds_function_level_and_indirect_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_and_from_imports_resolve_to_modules(tmp_path):
    modules = {"infrapower.lab", "infrapower.lab.core", "infrapower.lab.rack", "infrapower.errors"}
    source = tmp_path / "core.py"
    source.write_text(
        "from infrapower.lab import rack\n"
        "from infrapower.errors import InfrapowerError\n"
        "def f():\n"
        "    from . import rack\n"
        "    from infrapower.lab.rack import Rack\n"
        "    import infrapower.lab\n"
    )
    found = imported_modules("infrapower.lab.core", source, modules)
    assert found == {"infrapower.lab.rack", "infrapower.errors", "infrapower.lab"}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_runtime_imports_no_tool_nor_lab():
    graph = import_graph()
    runtime = sorted(module for module in graph if is_runtime(module))
    assert f"{PACKAGE}.tables" in runtime and f"{PACKAGE}.snmp.session" in runtime
    wrong = {
        module: sorted(target for target in reachable(graph, module) if is_tool(target))
        for module in runtime
    }
    wrong = {module: targets for module, targets in wrong.items() if targets}
    assert not wrong, f"the agents' runtime reaches tool or lab modules: {wrong}"


@pytest.mark.parametrize("module", sorted(all_modules()))
def test_module_length(module):
    path = all_modules()[module]
    lines = len(path.read_text().splitlines())
    if module in KNOWN_LONG:
        pytest.xfail(KNOWN_LONG[module])
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE_DIR.parent)} has {lines} lines (at most {MAX_LINES})"
