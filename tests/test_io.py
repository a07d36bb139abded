"""cosim.io: arrays load checked and write atomically; every failure is one line naming the file.

Budget: well under 1 s (tiny files in tmp_path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cosim.errors import InputError
from cosim.io import atomic_write_text, check_output_path, finite_or_raise, load_array, parse_csv, save_array


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


@pytest.mark.parametrize("shape", [(5,), (3, 4), (1, 1)])
@pytest.mark.parametrize("ext", [".npy", ".csv"])
def test_round_trip_is_exact(tmp_path, rng, shape, ext):
    # CSV numbers are written as Python's shortest round-trip text, so reading back is exact.
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-12, 3, size=shape)
    path = tmp_path / f"a{ext}"
    save_array(path, a)
    back = load_array(path, what="test")
    expected = a if ext == ".npy" else np.atleast_2d(a)  # CSV is always 2-D, one row per line
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, expected)


def test_json_round_trip_and_header_rows(tmp_path, rng):
    a = rng.uniform(size=(2, 3))
    save_array(tmp_path / "a.json", a)
    np.testing.assert_array_equal(np.array(json.loads((tmp_path / "a.json").read_text())), a)
    save_array(tmp_path / "h.json", a, header=["i0_A", "i1_A", "i2_A"])
    rows = json.loads((tmp_path / "h.json").read_text())
    assert rows == [{"i0_A": a[r, 0], "i1_A": a[r, 1], "i2_A": a[r, 2]} for r in range(2)]


def test_csv_for_people_header_is_written_and_skipped_on_load(tmp_path):
    a = np.array([[1e-6], [2.5e-6]])
    path = tmp_path / "i.csv"
    save_array(path, a, header="current_A")
    assert path.read_text().splitlines()[0] == "current_A"
    np.testing.assert_array_equal(load_array(path, what="currents"), a)


def test_csv_parsing_tolerates_spaces_and_blank_lines():
    a = parse_csv("1, 2 ,3\n\n 4,5,6e-3\n", where="x")
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 5, 6e-3]])


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "g.npy", what="--conductance")
    assert one_line(exc) == f"--conductance file {tmp_path / 'g.npy'} does not exist"


def test_wrong_extension_is_refused_before_reading(tmp_path):
    (tmp_path / "g.txt").write_text("1,2\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "g.txt", what="--conductance")
    assert "g.txt must end in .npy or .csv, got '.txt'" in one_line(exc)


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "d.csv", what="V")
    assert "is a folder" in one_line(exc)


def test_ragged_csv_names_the_line(tmp_path):
    (tmp_path / "v.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "v.csv", what="--voltages")
    msg = one_line(exc)
    assert "v.csv" in msg and "line 3 has 2 values, expected 3" in msg and "ragged" in msg


def test_non_numeric_cell_names_line_and_column(tmp_path):
    (tmp_path / "v.csv").write_text("1,2\n3,4\n5,abc\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "v.csv", what="--voltages")
    assert one_line(exc).endswith("v.csv: line 3, column 2: 'abc' is not a number")


def test_empty_cell_is_named(tmp_path):
    (tmp_path / "v.csv").write_text("1,2\n3,\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "v.csv", what="V")
    assert "line 2, column 2: an empty cell is not a number" in one_line(exc)


def test_empty_csv(tmp_path):
    (tmp_path / "v.csv").write_text("\n\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "v.csv", what="V")
    assert "holds no numbers" in one_line(exc)


def test_non_utf8_csv(tmp_path):
    (tmp_path / "v.csv").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "v.csv", what="V")
    assert "not a text CSV file" in one_line(exc)


def test_corrupt_and_object_npy(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"this is not numpy")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "bad.npy", what="G")
    assert "bad.npy cannot be read: not a valid .npy file" in one_line(exc)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "obj.npy", what="G")
    assert "holds Python objects" in one_line(exc)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "empty.npy", what="G")
    assert "empty.npy cannot be read" in one_line(exc)


def test_string_npy_is_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "s.npy", what="G")
    assert "must hold numbers" in one_line(exc)


def test_permission_denied_is_one_line(tmp_path, monkeypatch):
    # Tests may run as root, where chmod 000 does not stop a read: raise the error directly.
    path = tmp_path / "v.csv"
    path.write_text("1\n")

    def deny(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", deny)
    with pytest.raises(InputError) as exc:
        load_array(path, what="V")
    assert "v.csv is not readable (permission denied)" in one_line(exc)


def test_nan_is_returned_for_the_caller_to_judge(tmp_path):
    (tmp_path / "g.csv").write_text("1,nan\n")
    g = load_array(tmp_path / "g.csv", what="G")
    assert np.isnan(g[0, 1])
    with pytest.raises(InputError) as exc:
        finite_or_raise(g, what="G", unit="S")
    assert one_line(exc) == "G[0,1] is NaN; expected finite S"


def test_save_refuses_bad_extension_and_missing_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        save_array(tmp_path / "x.txt", [1.0])
    assert "must end in .npy, .csv or .json" in one_line(exc)
    with pytest.raises(InputError) as exc:
        save_array(tmp_path / "no" / "x.npy", [1.0])
    assert "does not exist" in one_line(exc)
    with pytest.raises(InputError):
        check_output_path(tmp_path / "no" / "x.npy", what="--output")
    with pytest.raises(InputError) as exc:
        save_array(tmp_path / "x.csv", np.zeros((2, 2, 2)))
    assert "needs .npy" in one_line(exc)
    assert list(tmp_path.iterdir()) == []


def test_json_refuses_nan_and_leaves_nothing(tmp_path):
    with pytest.raises(InputError):
        save_array(tmp_path / "x.json", [1.0, float("nan")])
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.npy"
    save_array(path, [1.0, 2.0])

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_array(path, [3.0, 4.0])
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "deck.cir", "* text\n")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]
    np.testing.assert_array_equal(np.load(path), [1.0, 2.0])


def test_atomic_write_text_replaces_whole_file(tmp_path):
    path = tmp_path / "deck.cir"
    atomic_write_text(path, "first\n")
    atomic_write_text(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["deck.cir"]


def test_header_only_csv_is_named(tmp_path):
    (tmp_path / "i.csv").write_text("current_A\n")
    with pytest.raises(InputError) as exc:
        load_array(tmp_path / "i.csv", what="I")
    assert "holds only a header line (line 1)" in one_line(exc)
