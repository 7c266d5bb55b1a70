"""The layout's contract: layers checked by import-linter, the public API pinned, modules and functions kept small."""

from __future__ import annotations

import ast
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import sveta

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "sveta"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PUBLIC = [
    "BlockedURLError",
    "CatalogError",
    "CatalogStore",
    "Completer",
    "ConfigError",
    "Filter",
    "InputError",
    "Looker",
    "Searcher",
    "Settings",
    "SourceError",
    "SvetaError",
    "__version__",
    "get_embedder",
    "open_catalog",
    "open_source",
    "run_ingest",
    "sync_index",
    "tag_photos",
    "train_catalog",
]


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_layers_contract_is_kept() -> None:
    result = _lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(SRC, tmp_path / "src" / "sveta", ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    models = tmp_path / "src" / "sveta" / "catalog" / "models.py"
    models.write_text(models.read_text() + "\n\ndef _sneaky() -> None:\n    from sveta.engines import search  # noqa\n")
    result = _lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "sveta.catalog is not allowed to import sveta.engines" in result.stdout


def test_public_api_is_pinned_and_resolves() -> None:
    assert sveta.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(sveta, name) is not None, name


def test_import_sveta_loads_no_heavy_dependency() -> None:
    code = "import sys, sveta; print(sorted(m for m in ('numpy', 'sqlalchemy', 'PIL', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "migrations" not in p.parts]


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_functions_stay_short() -> None:
    sizes: dict[str, int] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                sizes[f"{path.relative_to(SRC)}:{node.name}"] = (node.end_lineno or node.lineno) - node.lineno + 1
    assert statistics.median(sizes.values()) <= 10
    assert {name: n for name, n in sizes.items() if n > 100} == {}


def test_the_readme_python_api_uses_only_public_names() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    tree = ast.parse(block)
    deep = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("sveta")]
    assert deep == []
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "sveta"}
    assert used and used <= set(sveta.__all__), used - set(sveta.__all__)


def test_architecture_lists_every_module() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    listed = {p for p in _modules() if p.name != "__init__.py" or p.parent.parent != SRC}
    missing = [str(p.relative_to(SRC)) for p in listed if f"`sveta/{p.relative_to(SRC)}`" not in text]
    assert missing == []
