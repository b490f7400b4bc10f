"""The installed-distributions map behind a run's package versions: kept on disk per
environment, computed again when a distribution is installed, upgraded or removed; versions
are read live."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nbops import distributions


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
    assert first["nbopsfake_mod"] == ("nbopsfake",)
    assert first["sklearn"] == ("scikit-learn",)

    monkeypatch.setattr(distributions, "_scan", _no_scan)
    assert distributions.installed(tmp_path / "cache") == first


def test_an_install_or_a_removal_is_seen(site: Path, tmp_path: Path) -> None:
    assert "nbopsfake_mod" not in distributions.installed(tmp_path / "cache")
    _install(site, "nbopsfake", "1.0")
    assert distributions.installed(tmp_path / "cache")["nbopsfake_mod"] == ("nbopsfake",)
    for file in (site / "nbopsfake-1.0.dist-info").iterdir():
        file.unlink()
    (site / "nbopsfake-1.0.dist-info").rmdir()
    assert "nbopsfake_mod" not in distributions.installed(tmp_path / "cache")


def test_versions_are_read_live(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution rewritten in place (same folder name) still reports its own version."""
    from nbops.capture import context

    _install(site, "nbopsfake", "1.0")
    monkeypatch.setattr(context, "_installed", lambda: distributions.installed(site.parent))
    context._version.cache_clear()
    assert context.package_versions({"nbopsfake_mod"}) == {"nbopsfake": "1.0"}
    info = site / "nbopsfake-1.0.dist-info" / "METADATA"
    info.write_text(info.read_text().replace("1.0", "1.1"))
    context._version.cache_clear()  # a new kernel
    assert context.package_versions({"nbopsfake_mod"}) == {"nbopsfake": "1.1"}


def test_a_damaged_cache_file_is_computed_again(site: Path, tmp_path: Path) -> None:
    _install(site, "nbopsfake", "1.0")
    cache = tmp_path / "cache"
    cache.mkdir()
    distributions.installed(cache)
    (file,) = cache.glob("distributions-*.json")
    file.write_text('{"format": 3, "key": ')
    assert distributions.installed(cache)["nbopsfake_mod"] == ("nbopsfake",)
    assert file.read_text().startswith('{"format": 3')
    file.chmod(0o400)  # read-only: still answers, from a scan
    _install(site, "other", "3.0")
    assert distributions.installed(cache)["other_mod"] == ("other",)


def test_folders_without_distributions_share_the_file(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel started in the notebook's folder and a pipeline stage started in the pipeline's
    have different ``sys.path[0]``: they read one file rather than scanning (and replacing the
    other's file) every time."""
    _install(site, "nbopsfake", "1.0")
    cache = tmp_path / "cache"
    first = distributions.installed(cache)
    path = list(sys.path)
    for folder in ("notebooks", "pipelines/weather"):
        (tmp_path / folder).mkdir(parents=True)
        monkeypatch.setattr(sys, "path", [str(tmp_path / folder), *path])
        monkeypatch.setattr(distributions, "_scan", _no_scan)
        assert distributions.installed(cache) == first
    assert len(list(cache.glob("distributions-*.json"))) == 1


def _no_scan() -> None:
    raise AssertionError("scanned again though nothing was installed")
