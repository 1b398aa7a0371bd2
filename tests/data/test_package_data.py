"""The tables the data stage reads at run time (release counts, known feature sets) ship with the package."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.conftest import REPO


def test_every_data_table_is_package_data() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["egonlq"]
    package = REPO / "src" / "egonlq"
    tables = sorted(p.relative_to(package).as_posix() for p in (package / "data").glob("*.json"))
    assert {"data/nlq_releases.json", "data/feature_sets.json"} <= set(tables)
    assert [t for t in tables if not any(fnmatch.fnmatch(t, g) for g in globs)] == []
