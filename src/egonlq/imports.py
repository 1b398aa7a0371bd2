"""The source files a piece of ``egonlq`` depends on, read from its imports (module-level and inside
functions) and followed transitively.

The workflow uses it for each rule's ``code`` input (editing a module reruns exactly the rules whose code
imports it); the tests use it to check those inputs against what each CLI command imports, and the conda
envs against the third-party packages.

Reading every module's syntax tree costs about a second per Snakemake start, so the import lists are kept in
``.snakemake/egonlq_imports.json`` (the workflow's own metadata folder, relative to where Snakemake runs),
keyed by file, modification time and size: a module is read again only when it changed.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CACHE_FILE = Path(".snakemake") / "egonlq_imports.json"
_cache: dict[str, list] | None = None
_cache_dirty = False


@cache
def module_path(module: str) -> Path | None:
    """The file of ``egonlq.<module>`` (a module or a package's ``__init__``), or None."""
    base = PACKAGE / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def _egonlq_name(name: str) -> str | None:
    """The egonlq module an import of ``name`` loads (``egonlq.a.b.func`` -> ``a.b``), or None."""
    if not name.startswith("egonlq."):
        return None
    parts = name.removeprefix("egonlq.").split(".")
    for n in range(len(parts), 0, -1):
        if module_path(".".join(parts[:n])):
            return ".".join(parts[:n])
    return None


def imports_of(node: ast.AST) -> tuple[set[str], set[str]]:
    """(egonlq modules, other top-level names) imported anywhere under ``node``."""
    ours, theirs = set(), set()
    for sub in ast.walk(node):
        names: list[str] = []
        if isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.level == 0 and sub.module:
            names = [sub.module] + [f"{sub.module}.{a.name}" for a in sub.names]
        for name in names:
            module = _egonlq_name(name)
            if module:
                ours.add(module)
                # importing a.b.c runs the __init__ of a and a.b first
                parts = module.split(".")
                parents = (".".join(parts[:n]) for n in range(1, len(parts)))
                ours |= {m for m in parents if module_path(m)}
            elif name.split(".")[0] != "egonlq":
                theirs.add(name.split(".")[0])
    return ours, theirs


@cache
def _module_imports(module: str) -> frozenset[str]:
    """The egonlq modules ``egonlq.<module>`` imports anywhere (read once per process, and once per change of
    the file when :data:`CACHE_FILE`'s folder exists)."""
    global _cache, _cache_dirty
    path = module_path(module)
    assert path is not None, module
    stat = path.stat()
    key, stamp = str(path), [stat.st_mtime_ns, stat.st_size]
    if _cache is None:
        _cache = _load_cache()
    entry = _cache.get(key)
    if entry is not None and entry[:2] == stamp:
        return frozenset(entry[2])
    found = frozenset(imports_of(_tree(module))[0])
    _cache[key] = [*stamp, sorted(found)]
    _cache_dirty = True
    return found


def _load_cache() -> dict[str, list]:
    if CACHE_FILE.parent.is_dir():
        atexit.register(_save_cache)
        try:
            loaded = json.loads(CACHE_FILE.read_text())
            if isinstance(loaded, dict):
                return loaded
        except (OSError, ValueError):
            pass  # absent or unreadable: rebuilt from the sources
    return {}


def _save_cache() -> None:
    if not _cache_dirty or _cache is None:
        return
    tmp = CACHE_FILE.with_name(f"{CACHE_FILE.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_cache, sort_keys=True))
        os.replace(tmp, CACHE_FILE)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only folder: the next start reads the sources again


@cache
def _tree(module: str) -> ast.Module:
    path = module_path(module)
    assert path is not None, module
    return ast.parse(path.read_text())


def closure(modules: set[str], skip: frozenset[str] = frozenset()) -> set[str]:
    """``modules`` and every egonlq module they import, transitively (whole modules), except ``skip``."""
    seen: set[str] = set(skip)
    todo = sorted(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")  # importing a.b runs a/__init__ first
        todo += [m for m in (".".join(parts[:n]) for n in range(1, len(parts))) if module_path(m)]
        todo += sorted(_module_imports(module) - seen)
    return seen - skip


def command_modules(command: str) -> set[str]:
    """The egonlq modules the CLI ``command`` runs: the CLI's own modules, its stage module and the
    transitive imports of the command's function (not of the stage module's other commands)."""
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        module = f"cli.{path.stem}"
        tree = _tree(module)
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and d.args and getattr(d.args[0], "value", None) == command
                for d in fn.decorator_list
            ):
                others = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
                top_level = ast.Module(body=others, type_ignores=[])
                # module-level helpers the command calls (``_split_videos``)
                helpers = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
                called = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in helpers]
                roots = {"cli", "cli.__main__"} | imports_of(top_level)[0] | imports_of(fn)[0]
                for helper in called:
                    roots |= imports_of(helper)[0]
                return closure(roots, skip=stage_clis()) | {module}
    raise KeyError(f"no CLI command {command!r}")


def source_files(modules: set[str]) -> list[str]:
    """Sorted paths relative to ``src/egonlq`` of ``modules``."""
    return sorted(str(module_path(m).relative_to(PACKAGE)) for m in modules)


@cache
def code_files(stage: str, *modules: str) -> tuple[str, ...]:
    """Sorted paths relative to ``src/egonlq`` of what a command of ``stage`` runs when it calls ``modules``:
    the CLI's entry modules, the stage's command module, ``modules`` and all they import."""
    for module in (f"cli.{stage}", *modules):
        if module_path(module) is None:
            raise ValueError(f"no module egonlq.{module}")
    files = closure({"cli", "cli.__main__", *modules}, skip=stage_clis()) | {f"cli.{stage}"}
    return tuple(source_files(files))  # cached: input functions ask again for every job


@cache
def stage_clis() -> frozenset[str]:
    """The command modules of the stages: ``cli/__init__`` imports them all, a command runs only its own."""
    entry = {"cli.__init__", "cli.__main__", "cli.registry"}
    return frozenset({f"cli.{p.stem}" for p in (PACKAGE / "cli").glob("*.py")} - entry)
