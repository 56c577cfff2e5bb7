"""The library's import graph: its depth in layers (the longest chain of module imports) and any cycle.

    python benchmarks/import_layers.py            # every import, module level and inside functions
    python benchmarks/import_layers.py --top      # module-level imports only
"""
import ast
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sgm_bench"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_only: bool) -> set:
    """The sgm_bench modules a file imports (a package import counts as its __init__)."""
    name, tree = module_name(path), ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports are for annotations only: not imports
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    nodes = tree.body if top_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("sgm_bench"):  # `from pkg import module` imports the module; else pkg itself
                modules = {f"{base}.{a.name}" for a in node.names} & KNOWN
                out |= modules or {base}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sgm_bench")}
    return out


KNOWN = {module_name(p) for p in ROOT.rglob("*.py")}


def main(top_only: bool) -> None:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {m: {i for i in imports(p, top_only) if i in files and i != m} for m, p in files.items()}
    seen, cycles = set(), []

    @lru_cache(maxsize=None)
    def depth(m, trail=()):
        if m in trail:
            cycles.append(trail[trail.index(m):] + (m,))
            return 0
        return 1 + max((depth(d, trail + (m,)) for d in graph[m]), default=0)

    layers = {m: depth(m) for m in graph}
    deepest = max(layers, key=layers.get)
    chain, m = [deepest], deepest
    while graph[m]:
        m = max((d for d in graph[m] if d not in chain), key=lambda d: layers[d], default=None)
        if m is None:
            break
        chain.append(m)
    print(f"{'module-level' if top_only else 'all'} imports: {len(graph)} modules, {max(layers.values())} layers")
    print("deepest chain: " + " -> ".join(chain))
    unique = {tuple(sorted(set(c))) for c in cycles}
    print(f"cycles: {len(unique)}" + "".join(f"\n  {' -> '.join(c)}" for c in list(unique)[:10]))


if __name__ == "__main__":
    main("--top" in sys.argv)
