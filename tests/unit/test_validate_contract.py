"""The data contract: what is inferred from training data, and how each kind of schema skew
reads to the user."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
import yaml
from sklearn.datasets import load_wine

from nbops.errors import ConfigError
from nbops.validate import contract
from nbops.validate.data import read_contract, write_contract


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


@pytest.fixture
def mixed() -> pd.DataFrame:
    """A categorical column, a nullable column, an identifier, a boolean, a signed column."""
    n = 40
    return pd.DataFrame(
        {
            "color": ["red", "white"] * (n // 2),
            "grade": pd.Categorical(["a", "b", "c", "a"] * (n // 4)),
            "maybe": [None if i % 5 == 0 else float(i) for i in range(n)],
            "id": [f"w{i:03d}" for i in range(n)],
            "ok": [i % 3 == 0 for i in range(n)],
            "delta": [float(i - 20) for i in range(n)],
        }
    )


def _messages(df: pd.DataFrame, schema: pa.DataFrameSchema) -> list[str]:
    return [p.message for p in contract.check_frame(df, schema, "data/x.csv")]


def _roundtrip(df: pd.DataFrame) -> pa.DataFrameSchema:
    """Infer, serialize and read back, as promote and the validate stage do."""
    return contract.from_mapping(contract.to_mapping(contract.infer_schema(df)), "test")


def test_wine_contract_has_columns_dtypes_and_no_hard_ranges(wine: pd.DataFrame) -> None:
    mapping = contract.to_mapping(contract.infer_schema(wine))
    assert mapping["strict"] is True and not mapping.get("coerce", False)
    columns = mapping["columns"]
    assert list(columns) == [str(c) for c in wine.columns]
    assert columns["alcohol"] == {"dtype": "float64", "greater_than_or_equal_to": 0}
    assert columns["target"]["dtype"] == "int64"
    assert not any("in_range" in c or "less_than_or_equal_to" in c for c in columns.values())


def test_mixed_contract_domains_and_nullability(mixed: pd.DataFrame) -> None:
    columns = contract.to_mapping(contract.infer_schema(mixed))["columns"]
    assert columns["color"] == {"dtype": "str", "isin": ["red", "white"]}
    assert columns["grade"]["isin"] == ["a", "b", "c"]
    assert columns["maybe"]["nullable"] is True and "nullable" not in columns["color"]
    assert "isin" not in columns["id"]  # 40 distinct values in 40 rows: an identifier
    assert columns["ok"] == {"dtype": "bool"}
    assert "greater_than_or_equal_to" not in columns["delta"]  # it was negative in training


def test_the_same_data_passes(wine: pd.DataFrame, mixed: pd.DataFrame) -> None:
    assert _messages(wine, _roundtrip(wine)) == []
    assert _messages(mixed, _roundtrip(mixed)) == []


def test_a_new_batch_slightly_outside_the_training_range_passes(wine: pd.DataFrame) -> None:
    batch = wine.copy()
    batch["hue"] = batch["hue"] * 1.05  # max 1.71 -> 1.80
    assert _messages(batch, _roundtrip(wine)) == []


def test_dropped_extra_and_retyped_columns(wine: pd.DataFrame) -> None:
    schema = _roundtrip(wine)
    batch = wine.drop(columns=["alcohol"]).assign(extra=1.0)
    batch["ash"] = batch["ash"].map(lambda v: f"{v:.2f}")
    assert _messages(batch, schema) == [
        "column 'alcohol' is missing",
        "column 'ash': dtype float64 expected, found str",
        "column 'extra' is not in the contract",
    ]


def test_problem_fields_name_file_column_expected_and_found(wine: pd.DataFrame) -> None:
    batch = wine.assign(magnesium=wine["magnesium"].astype("int64"))
    (problem,) = contract.check_frame(batch, _roundtrip(wine), "data/wine.csv")
    assert (problem.file, problem.column, problem.check) == ("data/wine.csv", "magnesium", "dtype")
    assert (problem.expected, problem.found) == ("float64", "int64")


def test_nulls_domain_and_sign(mixed: pd.DataFrame, wine: pd.DataFrame) -> None:
    batch = mixed.copy()
    batch.loc[[1, 2, 3], "color"] = None
    batch.loc[4, "color"] = "rose"
    assert _messages(batch, _roundtrip(mixed)) == [
        "column 'color': 1 value not in the allowed values ['red', 'white'] (e.g. 'rose')",
        "column 'color': 3 nulls where none are allowed",
    ]
    signed = wine.copy()
    signed.loc[[0, 1], "proline"] = [-1.0, -999.0]
    assert _messages(signed, _roundtrip(wine)) == [
        "column 'proline': 2 values below 0 (e.g. -1.0, -999.0)"
    ]


def test_a_hand_added_range_is_checked(wine: pd.DataFrame) -> None:
    mapping = contract.to_mapping(contract.infer_schema(wine))
    mapping["columns"]["hue"]["in_range"] = {"min_value": 0.48, "max_value": 1.71}
    schema = contract.from_mapping(mapping, "schema.yaml: data/wine.csv")
    batch = wine.copy()
    batch.loc[[0, 1], "hue"] = [2.5, 3.0]
    assert _messages(batch, schema) == [
        "column 'hue': 2 values outside [0.48, 1.71] (e.g. 2.5, 3.0)"
    ]


def test_a_typo_in_an_edited_contract_is_a_config_error(wine: pd.DataFrame) -> None:
    mapping = contract.to_mapping(contract.infer_schema(wine))
    mapping["columns"]["hue"]["in_rnage"] = {"min_value": 0, "max_value": 1}
    with pytest.raises(ConfigError, match="column 'hue': unknown key 'in_rnage'"):
        contract.from_mapping(mapping, "schema.yaml: data/wine.csv")
    mapping["columns"]["hue"] = {"dtype": "no-such-dtype"}
    with pytest.raises(ConfigError, match="not a valid pandera schema"):
        contract.from_mapping(mapping, "schema.yaml: data/wine.csv")


def test_write_contract_files_are_deterministic_and_commented(
    tmp_path: Path, wine: pd.DataFrame, mixed: pd.DataFrame
) -> None:
    (tmp_path / "data").mkdir()
    wine.to_csv(tmp_path / "data" / "wine.csv", index=False)
    mixed.to_parquet(tmp_path / "data" / "mixed.parquet")
    (tmp_path / "data" / "notes.txt").write_text("not a table")
    files = ["data/wine.csv", "data/notes.txt", "data/mixed.parquet"]
    assert write_contract(tmp_path, files) == ["schema.yaml", "reference/profile.json"]
    first = [(tmp_path / p).read_bytes() for p in ("schema.yaml", "reference/profile.json")]
    write_contract(tmp_path, list(reversed(files)))
    assert [(tmp_path / p).read_bytes() for p in ("schema.yaml", "reference/profile.json")] == first
    text = first[0].decode()
    assert text.startswith("# Data contract") and "re-run `nbops promote`" in text
    assert list(yaml.safe_load(text)["files"]) == ["data/mixed.parquet", "data/wine.csv"]
    assert set(json.loads(first[1])) == {"data/mixed.parquet", "data/wine.csv"}
    assert set(read_contract(tmp_path)) == {"data/mixed.parquet", "data/wine.csv"}


def test_write_contract_without_tables_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert write_contract(tmp_path, ["model.pkl"]) == []
    assert not (tmp_path / "schema.yaml").exists()


def test_tsv_files_are_read_with_tabs(tmp_path: Path, mixed: pd.DataFrame) -> None:
    mixed.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    write_contract(tmp_path, ["m.tsv"])
    columns = yaml.safe_load((tmp_path / "schema.yaml").read_text())["files"]["m.tsv"]["columns"]
    assert list(columns) == list(mixed.columns)


def test_importing_the_validate_package_stays_light() -> None:
    heavy = {"pandas", "pandera", "scipy", "numpy", "mlflow"}
    code = f"import sys, nbops.validate; print(sorted({heavy!r} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
