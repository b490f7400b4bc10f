"""The run record's JSON form is the spool unit and the MLflow artifact: it must round-trip."""

from __future__ import annotations

from nbops.record import Context, DataRef, ModelRef, RunRecord


def test_json_round_trip_keeps_everything() -> None:
    record = RunRecord(
        name="forest",
        experiment="wine",
        status="FINISHED",
        start=10.0,
        end=12.5,
        params={"n": 3, "layers": [1, 2], "opt": {"a": None}},
        metrics={"accuracy": 0.9},
        data=[DataRef("X", "input", "DataFrame", "xxh128:" + "a" * 32, [3, 2], {"a": "float64"})],
        code="x = 1",
        context=Context(notebook="nb.ipynb", git_commit="abc", packages={"pandas": "3.1"}),
        model=ModelRef("model", "sklearn", "RandomForestClassifier"),
        warnings=["w"],
    )
    back = RunRecord.from_json(record.to_json())
    assert back == record
    assert back.duration == 2.5
    assert [d.name for d in back.inputs()] == ["X"] and back.outputs() == []
    assert back.data[0].short == "aaaaaaaa"


def test_unknown_fields_from_a_newer_version_are_ignored() -> None:
    raw = RunRecord(name="x").to_dict() | {"from_the_future": 1}
    raw["context"]["also_new"] = True
    assert RunRecord.from_dict(raw).name == "x"


def test_numpy_scalars_serialise_as_numbers() -> None:
    import numpy as np

    record = RunRecord(params={"n": np.int64(3), "f": np.float32(0.5)})
    back = RunRecord.from_json(record.to_json())
    assert back.params == {"n": 3, "f": 0.5}
