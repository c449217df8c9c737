"""Where a Faust worker keeps its table folder, on a machine that has never run one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from permits_common.settings import CommonSettings
from permits_common.streams import faust_app


def test_the_table_folder_is_made_under_a_fresh_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAUST_DATADIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = faust_app("rights", CommonSettings(env="test"), app_id="permits-rights-datadir")
    app._create_directories()  # what the worker does first, with no parent made for it
    assert app.conf.tabledir.is_dir()
    assert app.conf.datadir == tmp_path / "permits-faust" / "permits-rights-datadir-data"


def test_faust_datadir_names_the_folder_in_a_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAUST_DATADIR", str(tmp_path / "{conf.name}-data"))
    app = faust_app("notify", CommonSettings(env="test"), app_id="permits-notify-datadir")
    assert app.conf.datadir == tmp_path / "permits-notify-datadir-data"
