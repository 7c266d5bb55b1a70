"""Lazy imports of optional dependencies: a missing one is a clear error naming what to install."""

from __future__ import annotations

import pytest

from sveta._optional import require
from sveta.errors import ConfigError


def test_a_present_module_is_returned() -> None:
    assert require("json", "clip").dumps([]) == "[]"


def test_a_missing_extra_names_the_pip_install() -> None:
    with pytest.raises(ConfigError, match="'sveta_no_such_module'") as caught:
        require("sveta_no_such_module.sub", "clip")
    assert caught.value.hint == "run: pip install 'sveta[clip]'"


def test_a_missing_core_dependency_says_reinstall_not_a_made_up_extra() -> None:
    with pytest.raises(ConfigError) as caught:
        require("sveta_no_such_module", None)
    assert "reinstall sveta" in (caught.value.hint or "") and "[" not in (caught.value.hint or "")
