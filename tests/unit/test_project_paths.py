"""Paths judged by where they resolve: a symlink out of the project is named, links inside
are followed, link cycles end."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbops.project_paths import Escape, escape, files_under


def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A project and, next to it, an outside folder with a file."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (project / "data" / "ok.csv").write_text("a\n1\n")
    return project, outside


def test_a_path_inside_is_fine_and_a_link_out_is_named(tmp_path: Path) -> None:
    project, outside = tree(tmp_path)
    assert escape(project / "data" / "ok.csv", project) is None
    (project / "data" / "out").symlink_to(outside)
    found = escape(project / "data" / "out" / "secret.txt", project)
    assert found is not None
    assert found.link == project / "data" / "out"
    assert found.target == outside.resolve()
    assert "symlink" in found.describe("data/out/secret.txt")


def test_a_link_that_stays_inside_the_project_is_followed(tmp_path: Path) -> None:
    project, _ = tree(tmp_path)
    (project / "shared").mkdir()
    (project / "shared" / "x.csv").write_text("x\n")
    (project / "data" / "shared").symlink_to(project / "shared")
    assert escape(project / "data" / "shared" / "x.csv", project) is None
    assert [rel for rel, _ in files_under(project / "data", project)] == [  # type: ignore[misc]
        "ok.csv",
        "shared/x.csv",
    ]


def test_files_under_a_folder_report_each_link_out_and_never_list_its_files(
    tmp_path: Path,
) -> None:
    project, outside = tree(tmp_path)
    deep = project / "data" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "etc").symlink_to("/etc")
    (project / "data" / "one.txt").symlink_to(outside / "secret.txt")
    (project / "data" / "loop").symlink_to(project / "data")  # a cycle inside the project
    items = list(files_under(project / "data", project))
    escapes = [i for i in items if isinstance(i, Escape)]
    files = [i for i in items if not isinstance(i, Escape)]
    assert {e.link.name for e in escapes} == {"etc", "one.txt"}
    assert all(str(real).startswith(str(project.resolve())) for _, real in files)  # type: ignore[misc]
    assert [rel for rel, _ in files] == ["ok.csv"]  # type: ignore[misc]


def test_a_relative_path_is_judged_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, outside = tree(tmp_path)
    (project / "link").symlink_to(outside / "secret.txt")
    monkeypatch.chdir(project)
    assert escape(Path("link"), project) is not None
    assert escape(Path("data/ok.csv"), project) is None
