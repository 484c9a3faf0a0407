"""The packages are layers and imports point down only: propeller (the generic trainer) <- ernie
(the model family) <- distill <- inference (user-facing commands). Every import counts, those
inside functions too, and no two modules of the project import each other, directly or round a
longer circle."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("propeller", "ernie", "distill", "inference")  # each may import only those before it


def _modules(root, packages):
    """{dotted module name: path} of every .py file under the given top-level packages."""
    out = {}
    for pkg in packages:
        for d, _, files in os.walk(os.path.join(root, pkg)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), root)[:-3].split(os.sep)
                    if rel[-1] == "__init__":
                        rel = rel[:-1]
                    out[".".join(rel)] = os.path.join(d, f)
    return out


def import_graph(root, packages=LAYERS):
    """{module: {(imported project module, line)}}: every import statement anywhere in the file,
    ``from a.b import c`` counted as ``a.b.c`` when that is a module of the project."""
    mods = _modules(root, packages)
    graph = {}
    for name, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # `import a.b.c` of a non-module name: its package
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add((t, node.lineno))
        graph[name] = edges
    return graph, mods


def upward_imports(root, layers=LAYERS):
    graph, mods = import_graph(root, layers)
    rank = {p: k for k, p in enumerate(layers)}
    return [f"{mods[m]}:{line}: {m} imports {t}" for m, edges in graph.items() for t, line in sorted(edges)
            if rank[t.split(".")[0]] > rank[m.split(".")[0]]]


def import_cycles(root, layers=LAYERS):
    """Strongly connected components of more than one module (Tarjan)."""
    graph, _ = import_graph(root, layers)
    adj = {m: sorted({t for t, _ in e}) for m, e in graph.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def test_no_layer_imports_a_higher_one():
    assert upward_imports(REPO) == []


def test_no_import_cycles():
    assert import_cycles(REPO) == []


def _write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.mark.parametrize("where", ["module", "function"])
def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path, where):
    root = str(tmp_path)
    for pkg in LAYERS:
        _write(root, f"{pkg}/__init__.py", "")
    up = "from ernie.model import X\n" if where == "module" else "def f():\n    from ernie import model\n"
    _write(root, "propeller/trainer.py", "import os\n" + up)
    _write(root, "ernie/model.py", "from ernie import heads\nX = 1\n")
    _write(root, "ernie/heads.py", "def g():\n    import ernie.model\n")
    assert [e.split(": ", 1)[1] for e in upward_imports(root)] == ["propeller.trainer imports ernie.model"]
    assert import_cycles(root) == [["ernie.heads", "ernie.model"]]
