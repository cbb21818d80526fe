"""sim_bridge.contract.catalog: the course's tracks.json read as it is, legacy files converted,
bad values named by file, line and field."""
import json

import pytest

from sim_bridge.contract import columns as C
from sim_bridge.contract.catalog import CatalogError, read_catalog, track_row, write_catalog

# four lines in the course's exact schema and field order
COURSE_LINES = [
    {"artist": "Кино", "album": "Группа крови", "title": "Кукушка", "genre": [1, 47], "pop": 2.37,
     "duration": 231, "track": 0},
    {"artist": "Кино", "album": "Группа крови", "title": "Закрой за мной дверь", "genre": [1], "pop": -0.63,
     "duration": 205, "track": 1},
    {"artist": "Аквариум", "album": "Радио Африка", "title": "Рок-н-ролл мёртв", "genre": [47, 1, 10],
     "pop": -1.4, "duration": 48, "track": 2},
    {"artist": "Земфира", "album": "Земфира", "title": "Ариведерчи", "genre": [149], "pop": 0.32,
     "duration": 836, "track": 3},
]


def _write(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")


def test_the_courses_lines_are_read_as_they_are(tmp_path):
    _write(tmp_path / "tracks.json", COURSE_LINES)
    catalog = read_catalog(tmp_path / "tracks.json")
    assert catalog.genres == [(1, 47), (1,), (47, 1, 10), (149,)]  # int ids, the list's order kept
    assert catalog.pop.tolist() == [2.37, -0.63, -1.4, 0.32]  # standardised, negatives kept
    assert catalog.tracks[C.ALBUM].tolist()[2] == "Радио Африка"
    assert catalog.tracks[C.DURATION].tolist() == [231, 205, 48, 836]
    assert catalog.artist_codes.tolist() == [2, 2, 0, 1]  # Аквариум < Земфира < Кино


def test_written_back_byte_for_byte_in_the_courses_field_order(tmp_path):
    _write(tmp_path / "tracks.json", COURSE_LINES)
    write_catalog(read_catalog(tmp_path / "tracks.json"), tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "tracks.json").read_bytes()
    assert track_row(read_catalog(tmp_path / "again.json"), 2) == COURSE_LINES[2]


def test_legacy_files_read_with_names_as_ids_by_rank(tmp_path):
    _write(tmp_path / "tracks.json", [
        {"track": 0, "artist": "artist_00000", "title": "t", "genre": "genre_02", "pop": 6647},
        {"track": 1, "artist": "artist_00000", "title": "t", "pop": 12},  # no genre: no ids
        {"track": 2, "artist": "artist_00001", "title": "t", "genre": "genre_00|genre_02", "pop": 3},
    ])
    catalog = read_catalog(tmp_path / "tracks.json")
    assert catalog.genres == [(1,), (), (0, 1)]
    assert catalog.pop.tolist() == [6647, 12, 3] and catalog.tracks[C.ALBUM].tolist() == [None] * 3


@pytest.mark.parametrize("line, message", [
    ('{"track": 0, "artist": "a", "genre": "[1, x]", "pop": 0.1}', 'genre: expected a list of integer genre ids, got "[1, x]"'),
    ('{"track": 0, "artist": "a", "genre": [1, "x"], "pop": 0.1}', 'genre: expected a list of integer genre ids, got [1, "x"]'),
    ('{"track": 0, "artist": "a", "genre": [1.5], "pop": 0.1}', "genre: expected a list of integer genre ids, got [1.5]"),
    ('{"track": 0, "artist": "a", "genre": [1], "pop": "high"}', 'pop: expected a finite number, got "high"'),
    ('{"track": 0, "artist": "a", "genre": [1], "pop": NaN}', "pop: expected a finite number, got NaN"),
    ('{"track": 0, "artist": "a", "genre": [1], "pop": 1, "duration": -3}',
     "duration: expected a non-negative number of seconds, got -3"),
    ('{"track": 0, "artist": "a", "album": 7, "genre": [1], "pop": 1}', "album: expected a string, got 7"),
    ('{"track": "0", "artist": "a", "genre": [1], "pop": 1}', 'track: expected a non-negative integer, got "0"'),
    ('{"track": 0, "genre": [1], "pop": 1}', "missing required field 'artist'"),
])
def test_a_bad_value_names_file_line_and_field(tmp_path, line, message):
    good = json.dumps({"track": 1, "artist": "b", "genre": [1], "pop": 0.5})
    _write(tmp_path / "tracks.json", [good, line])
    with pytest.raises(CatalogError) as exc:
        read_catalog(tmp_path / "tracks.json")
    assert str(exc.value) == f"{tmp_path / 'tracks.json'}:2: {message}"


def test_ids_must_be_0_to_n_minus_1(tmp_path):
    _write(tmp_path / "tracks.json", [{"track": 0, "artist": "a", "genre": [1], "pop": 1},
                                      {"track": 2, "artist": "a", "genre": [1], "pop": 1}])
    with pytest.raises(CatalogError, match="track ids must be 0..N-1"):
        read_catalog(tmp_path / "tracks.json")
