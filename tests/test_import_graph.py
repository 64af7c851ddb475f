"""The import graph of `fusion/`, `kernels/` and `calibration/`, built from the source with `ast`:
every `import` and `from ... import` statement counts, at module level, inside functions and
under `if TYPE_CHECKING:` alike (a lazy import still ties the two modules together).

It must have no cycle, and no module may import a command module. Command modules are the CLI
entry (`fusion.cli`) and the per-subcommand modules, those that define both `add_arguments` and
`run` at module level (found from the source, listed in the failure message)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fusion", "kernels", "calibration")
CLI_ENTRY = "fusion.cli"

# Command modules that still hold library code other commands use, with the only importers
# allowed until the command is split from the library (the package pass of issue 18). Any other
# importer fails, and so does an entry here that no longer imports the module.
MIXED_COMMAND_IMPORTS = {
    ("fusion.bench.real", "fusion.evaluate"),  # evaluate(), safe_name()
    # bench localization scores detection with true and estimated poses through evaluate()
    ("fusion.bench.localization", "fusion.evaluate"),
    ("fusion.bench.replay", "fusion.replay"),  # replay(), ReplayOptions, LIDAR_PERIOD_MS
    # bench replay times the same log through bench latency's loop in the same run
    ("fusion.bench.replay", "fusion.bench.latency"),  # StreamFrames
    # `bench latency --generate` runs `fusion generate` through `fusion.cli.main`: the generator
    # has no library entry yet (`fusion.synth.command.run` drives it)
    ("fusion.bench.latency", "fusion.cli"),
}

Graph = dict[str, dict[str, int]]  # module -> {imported module: first line}


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    files = {}
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> Graph:
    """Each module's imports of modules of `packages`. `from a.b import c` is an import of
    `a.b.c` when that is a module, else of `a.b`; relative imports are resolved."""
    files = module_files(root, packages)

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: Graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]  # fmt: skip
            for target in targets:
                module = known(target)
                if module is not None and module != name:
                    edges.setdefault(module, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def command_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> set[str]:
    """`fusion.cli` and every module defining both `add_arguments` and `run` at module level."""
    out = {CLI_ENTRY}
    for name, path in module_files(root, packages).items():
        tree = ast.parse(path.read_text(), str(path))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if {"add_arguments", "run"} <= defined:
            out.add(name)
    return out


def _describe(graph: Graph, component: list[str]) -> str:
    edges = [
        f"{a} -> {b} (line {line})"
        for a in component
        for b, line in sorted(graph[a].items())
        if b in component
    ]
    return "; ".join(edges)


def test_no_import_cycle():
    graph = import_graph(ROOT)
    assert len(graph) > 90  # the walk found the source tree
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(graph, c) for c in found)


def test_nothing_imports_a_command_module():
    graph = import_graph(ROOT)
    commands = command_modules(ROOT)
    # the subcommands fusion.cli dispatches to are all found as command modules
    assert {"fusion.evaluate", "fusion.train", "fusion.replay", "fusion.bench.kernels"} <= commands
    edges = {(a, b) for a, targets in graph.items() for b in targets if b in commands}
    bad = sorted(edges - MIXED_COMMAND_IMPORTS)
    assert not bad, f"command modules imported: {bad} (command modules: {sorted(commands)})"
    assert MIXED_COMMAND_IMPORTS <= edges, "an allowed import is gone: drop it from the list"


# Upward reaches removed in issue 18's first pass: (importer prefix, imported prefix) that must
# not come back. A prefix matches the module itself and everything under it.
FORBIDDEN = [
    ("fusion.sources", "fusion.synth"),  # the rig file is fusion.sources.rig_file
    ("fusion.pipeline", "fusion.model.detector"),  # Modality is in fusion.config
    ("fusion.pipeline", "fusion.model.camera"),  # IMAGE_MEAN/STD are in fusion.config
    ("fusion.nuscenes", "fusion.pipeline"),  # JPEG reduction arithmetic is in fusion.sensor_io
    ("fusion.stream", "fusion.pipeline"),
    ("fusion.sensor_io", "fusion.pipeline"),
]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_removed_upward_reaches_stay_removed():
    graph = import_graph(ROOT)
    found = [
        (a, b)
        for a, targets in graph.items()
        for b in targets
        for low, high in FORBIDDEN
        if _under(a, low) and _under(b, high)
    ]
    # production code does not import the benchmarks (their statistics are fusion.stats)
    found += [
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if _under(b, "fusion.bench") and not _under(a, "fusion.bench")
    ]
    assert not found, f"imports that reach up a layer: {sorted(found)}"


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (also inside top-level if/try blocks)."""
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            listed = any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
            if listed and isinstance(node.value, ast.List | ast.Tuple):
                # a module `__getattr__` may serve what `__all__` lists (lazy exports)
                names |= {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.If | ast.Try):
            body += node.body + node.orelse + getattr(node, "finalbody", [])
            body += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def missing_names(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """`from pkg.mod import name` (anywhere, lazy ones too) where `pkg.mod` defines no `name`
    and has no submodule `name`: what a moved definition leaves behind, before anything runs."""
    files = module_files(root, packages)
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in files.items()}
    defined = {name: _top_level_names(tree) for name, tree in trees.items()}
    out = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module in files:
                for alias in node.names:
                    known = alias.name in defined[node.module]
                    if not known and f"{node.module}.{alias.name}" not in files:
                        out.append(f"{name}:{node.lineno} {node.module}.{alias.name}")
    return out


def test_every_imported_name_exists():
    assert missing_names(ROOT) == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_planted_cycle_is_found(tmp_path: Path):
    """A cycle hidden in a function through a relative import, and one through a package's
    `__init__`, are both found; the acyclic part of the package is not reported."""
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import helper\n",
            "pkg/low.py": "import os\n",
            "pkg/a.py": "from pkg import low\nfrom pkg.b import thing\n",
            "pkg/b.py": "def thing():\n    from .a import other\n    return other\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/helper.py": "import pkg\n",
        },
    )
    graph = import_graph(root, ("pkg",))
    assert graph["pkg.b"] == {"pkg.a": 2} and graph["pkg.a"] == {"pkg.low": 1, "pkg.b": 2}
    assert sorted(cycles(graph)) == [["pkg", "pkg.sub.helper"], ["pkg.a", "pkg.b"]]
    (root / "pkg" / "b.py").write_text("def thing():\n    return 1\n")
    (root / "pkg" / "sub" / "helper.py").write_text("import os\n")
    assert cycles(import_graph(root, ("pkg",))) == []


def test_a_planted_stale_import_is_found(tmp_path: Path):
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "try:\n    import tomllib\nexcept ImportError:\n    X = 1\nY = 2\n",
            "pkg/a.py": "from pkg.low import X, Y, tomllib\ndef f():\n    from pkg.low import Z\n",
        },
    )
    assert missing_names(root, ("pkg",)) == ["pkg.a:3 pkg.low.Z"]


def test_a_planted_command_import_is_found(tmp_path: Path):
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/cmd.py": "def add_arguments(parser):\n    pass\n\ndef run(args):\n    return 0\n",
            "pkg/lib.py": "def f():\n    from pkg.cmd import run\n    return run\n",
        },
    )
    graph = import_graph(root, ("pkg",))
    commands = command_modules(root, ("pkg",))
    assert "pkg.cmd" in commands and "pkg.lib" not in commands
    assert [a for a, targets in graph.items() if set(targets) & commands] == ["pkg.lib"]
