"""The installed-distributions map behind a run's package versions: kept on disk per
environment, computed again when a distribution is installed, upgraded or removed."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from nbops.capture import distributions


def _install(site: Path, name: str, version: str) -> None:
    """A minimal installed distribution providing the module ``<name>_mod``."""
    for old in site.glob(f"{name}-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}_mod\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setattr(sys, "path", [str(folder), *sys.path])
    return folder


def test_the_map_is_read_back_without_scanning(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(site, "nbopsfake", "1.0")
    first = distributions.installed(tmp_path / "cache")
    assert first.modules["nbopsfake_mod"] == ("nbopsfake",)
    assert first.versions["nbopsfake"] == "1.0"
    assert first.modules["sklearn"] == ("scikit-learn",)

    def no_scan() -> None:
        raise AssertionError("scanned again though nothing was installed")

    monkeypatch.setattr(metadata, "packages_distributions", no_scan)
    again = distributions.installed(tmp_path / "cache")
    assert again.modules == first.modules and again.versions == first.versions


def test_an_upgrade_or_a_removal_is_seen(site: Path, tmp_path: Path) -> None:
    _install(site, "nbopsfake", "1.0")
    assert distributions.installed(tmp_path / "cache").versions["nbopsfake"] == "1.0"
    _install(site, "nbopsfake", "2.0")
    assert distributions.installed(tmp_path / "cache").versions["nbopsfake"] == "2.0"
    for file in (site / "nbopsfake-2.0.dist-info").iterdir():
        file.unlink()
    (site / "nbopsfake-2.0.dist-info").rmdir()
    assert "nbopsfake_mod" not in distributions.installed(tmp_path / "cache").modules


def test_a_damaged_cache_file_is_computed_again(site: Path, tmp_path: Path) -> None:
    _install(site, "nbopsfake", "1.0")
    cache = tmp_path / "cache"
    cache.mkdir()
    distributions.installed(cache)
    (file,) = cache.glob("distributions-*.json")
    file.write_text('{"format": 1, "key": ')
    assert distributions.installed(cache).versions["nbopsfake"] == "1.0"
    assert file.read_text().startswith('{"format": 1')
    file.chmod(0o400)  # read-only: still answers, from a scan
    _install(site, "nbopsfake", "3.0")
    assert distributions.installed(cache).versions["nbopsfake"] == "3.0"
