"""WFDB annotation files: real files against wfdb.rdann (C library where it differs),
writer round trips, records that carry their annotation files, damaged files."""

from __future__ import annotations

import io
import json
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgingest
from conftest import FIXTURES, corpus_dir, corpus_records, requires_corpus
from ecgingest.errors import (
    CorruptDataError,
    EcgIngestError,
    EcgWarning,
    LimitExceededError,
    TruncatedError,
)
from ecgingest.formats import wfdb as fw
from ecgingest.formats.wfdb.annotations import (
    STANDARD_SYMBOLS,
    looks_like_annotations,
)
from ecgingest.sources import Entry
from test_wfdb_writer import pack, write_header
from wfdb_ann_writer import AUX, CHN, NUM, SUB, Ann, expected, word, write_aha, write_mit

ANN_FIXTURES = FIXTURES / "wfdb_ann"
FIXTURE_FILES = sorted(p.with_name(p.name[:-len(".ref.json")])
                       for p in ANN_FIXTURES.rglob("*.ref.json"))


def _read(source, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        return ecgingest.read_annotations(source, **kw)


def _c_library_view(ref: dict) -> dict[str, list]:
    """The reference columns as the WFDB C library returns them: wfdb-python's, plus
    the annotations it drops that the C library keeps, symbols named as the C
    library names them, aux strings up to their first NUL."""
    cols = ref["annotations"]
    rows = [(s, lab, sym, sub, ch, nm, aux) for s, lab, sym, sub, ch, nm, aux in zip(
        cols["sample"], cols["label_store"], cols.get("symbol_c_library", cols["symbol"]),
        cols["subtype"], cols["chan"], cols["num"], cols["aux_note"])]
    extra = [(a["sample"], a["code"], None, a["subtype"], a["chan"], a["num"], a["aux"] or "")
             for a in ref.get("c_library_extra_annotations") or []]
    merged = []
    for row in rows:  # the extras go before the wfdb rows at or after their sample
        while extra and extra[0][0] <= row[0]:
            merged.append(extra.pop(0))
        merged.append(row)
    merged.extend(extra)
    return {
        "sample": [r[0] for r in merged],
        "code": [r[1] for r in merged],
        "symbol": [STANDARD_SYMBOLS[r[1]] if r[2] is None else r[2] for r in merged],
        "subtype": [r[3] for r in merged],
        "chan": [r[4] for r in merged],
        "num": [r[5] for r in merged],
        "aux_note": [r[6].split("\0")[0] for r in merged],
    }


def _assert_matches_reference(path: Path, ref: dict) -> None:
    ann = _read(path, strict=True)
    want = _c_library_view(ref)
    assert len(ann) == len(want["sample"]) == ref["n_annotations"] + len(
        ref.get("c_library_extra_annotations") or [])
    assert ann.sample.dtype == np.int64
    assert ann.sample.tolist() == want["sample"]
    assert ann.code.tolist() == want["code"]
    assert list(ann.symbol) == want["symbol"]
    assert ann.subtype.tolist() == want["subtype"]
    assert ann.chan.tolist() == want["chan"]
    assert ann.num.tolist() == want["num"]
    assert list(ann.aux_note) == want["aux_note"]
    assert ann.fs == ref["fs"]
    assert ann.record_name == ref["record_name"] and ann.annotator == ref["annotator"]
    assert ann.time_resolution == ref["time_resolution_in_file"]
    assert not ann.warnings


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_annotation_file_matches_the_reference_reader(path):
    _assert_matches_reference(path, json.loads(Path(f"{path}.ref.json").read_text()))


@requires_corpus
@pytest.mark.parametrize("entry", corpus_records("wfdb_ann"), ids=lambda e: e["path"])
def test_corpus_annotation_file_matches_the_reference_reader(entry):
    path = corpus_dir() / entry["path"]
    _assert_matches_reference(path, json.loads(Path(f"{path}.ref.json").read_text()))


def test_unbracketed_definition_names_a_code_as_the_c_library_does():
    ann = _read(write_mit([Ann(0, 22, aux=b"42 CAL Calibration"), Ann(5, 42), Ann(9, 1)]))
    assert ann.symbol == ("CAL", "N")
    assert ann.definitions == {42: ("CAL", "Calibration")}


def test_notes_at_time_zero_after_the_table_are_annotations():
    data = write_mit([Ann(0, 22, aux=b"gqrs -H"), Ann(3, 1)], time_resolution=500)
    ann = _read(data)
    assert ann.fs == 500 and ann.time_resolution == 500
    assert ann.symbol == ('"', "N") and ann.aux_note == ("gqrs -H", "")


def test_file_time_resolution_overrides_the_header_rate(tmp_path):
    (tmp_path / "r.hea").write_bytes(b"r 0 125 1000\n")
    (tmp_path / "r.qrs").write_bytes(write_mit([Ann(1000, 1)], time_resolution=500))
    ann = _read(tmp_path / "r.qrs")
    assert ann.fs == 500.0 and ann.onset.tolist() == [2.0]


def test_rate_comes_from_the_header_beside_a_path_and_is_none_for_bytes(tmp_path):
    (tmp_path / "r.hea").write_bytes(b"r 0 250 1000\n")
    data = write_mit([Ann(500, 1)])
    (tmp_path / "r.atr").write_bytes(data)
    assert _read(tmp_path / "r.atr").fs == 250.0
    from_bytes = _read(data)
    assert from_bytes.fs is None and from_bytes.onset is None
    assert from_bytes.record_name is None and from_bytes.annotator is None
    with open(tmp_path / "r.atr", "rb") as fh:
        from_file = _read(fh)
    assert (from_file.record_name, from_file.annotator) == ("r", "atr")
    assert from_file.sample.tolist() == [500]


def test_every_column_has_one_item_per_annotation_and_arrays_are_read_only():
    ann = _read(write_mit([Ann(1, 5, subtype=-1, chan=3, num=-2, aux=b"x"),
                           Ann(2, 28, chan=3, num=-2)]))
    columns = (ann.sample, ann.symbol, ann.code, ann.subtype, ann.chan, ann.num, ann.aux_note)
    assert {len(c) for c in columns} == {2}
    assert (ann.subtype.tolist(), ann.chan.tolist(), ann.num.tolist()) == ([-1, 0],
                                                                          [3, 3], [-2, -2])
    with pytest.raises(ValueError):
        ann.sample[0] = 7


def test_empty_annotation_file_is_the_endword_alone():
    ann = _read(b"\0\0", strict=True)
    assert len(ann) == 0 and ann.symbol == ()


@pytest.mark.parametrize("data", [b"", b"\x01", write_mit([Ann(5, 1)], end=False),
                                  write_mit([Ann(5, 1, aux=b"abcdef")])[:-5],
                                  write_mit([Ann(5, 1), Ann(10**6, 1)])[:-4]])
def test_file_cut_short_is_a_warning_lenient_and_a_truncated_error_strict(data):
    with pytest.warns(EcgWarning, match="cut short|ends"):
        ecgingest.read_annotations(data)
    with pytest.raises(TruncatedError):
        ecgingest.read_annotations(data, strict=True)


def test_codes_above_49_are_kept_with_a_warning_and_refused_strict():
    data = (50 << 10 | 3).to_bytes(2, "little") + b"\0\0"
    with pytest.warns(EcgWarning, match="not an annotation type"):
        ann = ecgingest.read_annotations(data)
    assert ann.code.tolist() == [50] and ann.symbol == ("[50]",)
    with pytest.raises(CorruptDataError):
        ecgingest.read_annotations(data, strict=True)


def test_annotation_count_is_bounded_by_the_limits_before_allocating():
    data = write_mit([Ann(i, 1) for i in range(1, 50)])
    with pytest.raises(LimitExceededError) as info:
        ecgingest.read_annotations(data, limits=ecgingest.Limits(max_annotations=10))
    assert info.value.limit == "max_annotations"


# --------------------------------------------------------------------------- writer


AUX_BYTES = st.binary(max_size=12).filter(lambda b: not b[:1].isdigit() and b[:1] not in
                                          (b"#", b" ", b"\t", b"+", b"-"))


@st.composite
def annotation_lists(draw, max_size=30):
    deltas = st.one_of(st.integers(0, 1023), st.integers(1024, 2**17),
                       st.integers(2**31 - 5, 2**32 + 5), st.integers(-(2**17), -1))
    out = []
    t = 0
    for _ in range(draw(st.integers(0, max_size))):
        t = max(0, t + draw(deltas))
        out.append(Ann(t, draw(st.integers(0, 49)), subtype=draw(st.integers(-128, 127)),
                       chan=draw(st.sampled_from([0, 0, 1, 16, 255])),
                       num=draw(st.sampled_from([0, 0, 1, -1, 127, -128])),
                       aux=draw(st.one_of(st.none(), AUX_BYTES))))
    return out


def _assert_decoded(ann, want: list[Ann], symbols=STANDARD_SYMBOLS):
    assert ann.sample.tolist() == [a.sample for a in want]
    assert ann.code.tolist() == [a.code for a in want]
    assert list(ann.symbol) == [symbols[a.code] for a in want]
    assert ann.subtype.tolist() == [a.subtype for a in want]
    assert ann.chan.tolist() == [a.chan for a in want]
    assert ann.num.tolist() == [a.num for a in want]
    assert list(ann.aux_note) == [(a.aux or b"").split(b"\0")[0].decode("utf-8")
                                  if _utf8(a.aux) else (a.aux or b"").split(b"\0")[0]
                                  .decode("latin-1") for a in want]


def _utf8(raw: bytes | None) -> bool:
    try:
        (raw or b"").split(b"\0")[0].decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@given(annotation_lists(), st.one_of(st.none(), st.sampled_from([250.0, 500.0, 1000.5])))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_writer_round_trip_returns_every_field(annotations, resolution):
    data = write_mit(annotations, time_resolution=resolution)
    ann = ecgingest.read_annotations(data, strict=True)
    _assert_decoded(ann, expected(annotations, has_table=resolution is not None))
    assert ann.fs == resolution
    assert looks_like_annotations(data)


@given(annotation_lists(max_size=10), st.booleans(),
       st.dictionaries(st.integers(0, 49), st.sampled_from(["X", "CAL", "ab", "[q]"]),
                       min_size=1, max_size=4))
def test_writer_definitions_rename_codes_bracketed_or_not(annotations, bracketed, names):
    data = write_mit(annotations, definitions={c: (s, "what") for c, s in names.items()},
                     bracketed=bracketed)
    ann = ecgingest.read_annotations(data, strict=True)
    symbols = list(STANDARD_SYMBOLS)
    for code, name in names.items():
        symbols[code] = name
    _assert_decoded(ann, expected(annotations, has_table=True), symbols)
    assert ann.definitions == {c: (s, "what") for c, s in names.items()}


def test_skip_over_two_to_the_sixteen_and_past_int32_keeps_64_bit_times():
    annotations = [Ann(70_000, 1), Ann(70_001, 5), Ann(3 * 2**31 + 7, 1), Ann(100, 28)]
    ann = ecgingest.read_annotations(write_mit(annotations), strict=True)
    assert ann.sample.tolist() == [70_000, 70_001, 3 * 2**31 + 7, 100]


def test_num_and_chan_are_sticky_and_subtype_and_aux_are_not():
    words = [(1, 1), (CHN, 2), (NUM, 3), (SUB, 1), (AUX, 5)]
    data = b"".join(word(c, v) for c, v in words) + b"(AFIB\0"
    data += word(1, 1) + word(1, 1) + word(CHN, 0) + b"\0\0"
    ann = ecgingest.read_annotations(data, strict=True)
    assert ann.chan.tolist() == [2, 2, 0] and ann.num.tolist() == [3, 3, 3]
    assert ann.subtype.tolist() == [1, 0, 0] and ann.aux_note == ("(AFIB", "", "")


def test_type_zero_annotations_are_kept_except_right_after_the_table():
    annotations = [Ann(0, 0), Ann(4, 0), Ann(8, 1)]
    with_table = ecgingest.read_annotations(write_mit(annotations, time_resolution=360))
    assert with_table.code.tolist() == [0, 0, 1] and with_table.symbol[0] == " "
    without = ecgingest.read_annotations(write_mit(annotations))
    assert without.code.tolist() == [0, 1]  # the C library loses the first one


@given(st.lists(st.builds(Ann, st.integers(0, 2**31 - 1), st.sampled_from(
    [1, 5, 6, 10, 12, 13, 14, 22, 41]), st.integers(-1, 3), st.just(0), st.just(0),
    st.one_of(st.none(), st.binary(min_size=1, max_size=6).filter(lambda b: b[0] != 0))),
    min_size=1, max_size=20))
def test_aha_format_round_trip(annotations):
    annotations = [a if a.code != 22 or a.sample else Ann(1, 22, a.subtype, aux=a.aux)
                   for a in annotations]  # keep clear of the leading-note table
    ann = ecgingest.read_annotations(write_aha(annotations), strict=True)
    assert ann.format_detail == "AHA"
    assert ann.sample.tolist() == [a.sample for a in annotations]
    assert ann.code.tolist() == [a.code for a in annotations]
    assert ann.subtype.tolist() == [-1 if a.code == 14 and a.subtype == 0 else a.subtype
                                    for a in annotations]
    assert ann.chan.tolist() == [a.code for a in annotations]  # AHA files store it there
    assert list(ann.aux_note) == [(a.aux or b"").split(b"\0")[0].decode("latin-1")
                                  if not _utf8(a.aux) else (a.aux or b"").split(b"\0")[0]
                                  .decode() for a in annotations]


@given(annotation_lists(max_size=15).filter(
    lambda anns: all(a.code not in (0, 15, 17) and a.code < 42 and not
                     (a.sample == 0 and a.code == 22) and 0 <= a.subtype <= 127
                     and 0 <= a.num <= 127 and (a.aux or b"").isascii() for a in anns)))
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_writer_files_read_like_wfdb_rdann_where_it_agrees_with_the_c_library(tmp_path_factory,
                                                                             annotations):
    wfdb = pytest.importorskip("wfdb")
    d = tmp_path_factory.mktemp("rdann")
    (d / "r.hea").write_bytes(b"r 0 360 1000\n")
    (d / "r.atr").write_bytes(write_mit(annotations))
    ref = wfdb.rdann(str(d / "r"), "atr")
    ann = _read(d / "r.atr", strict=True)
    assert ann.sample.tolist() == ref.sample.tolist()
    assert list(ann.symbol) == list(ref.symbol)
    assert ann.subtype.tolist() == list(ref.subtype)
    assert ann.chan.tolist() == list(ref.chan) and ann.num.tolist() == list(ref.num)
    assert list(ann.aux_note) == [s.split("\0")[0] for s in ref.aux_note]


# --------------------------------------------------------------------------- records


def _record_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def _small_record(n: int = 1000, fs: float = 250.0) -> dict[str, bytes]:
    sig = np.arange(n, dtype=np.int64) % 100
    return {"r.hea": write_header("r", [("r.dat", "16", sig)], nframes=n, fs=fs),
            "r.dat": pack(16, [sig], [1])}


def test_fixture_record_comes_with_its_annotation_file():
    [record] = ecgingest.read(ANN_FIXTURES / "100_3chan" / "100_3chan.hea")
    atr = record.annotators["atr"]
    assert atr.sample.tolist() == [18, 77, 370, 662, 946] and atr.fs == 360
    assert [a.text for a in record.annotations] == ["+ (N", "N", "N", "N", "N"]
    assert [a.onset for a in record.annotations] == [s / 360 for s in atr.sample.tolist()]
    assert all(a.duration is None for a in record.annotations)
    assert record.sources[-1].endswith("100_3chan.atr")


@requires_corpus
def test_mit_bih_100_record_carries_all_2274_reference_annotations(tmp_path):
    root = corpus_dir()
    for name in ("100.hea", "100.dat"):
        shutil.copy(root / "wfdb" / "mitdb_100" / name, tmp_path / name)
    shutil.copy(root / "wfdb_ann" / "mitdb_100" / "100.atr", tmp_path / "100.atr")
    result = ecgingest.ingest(tmp_path)
    assert not result.skipped and not result.errors
    [record] = result.records
    ref = json.loads((root / "wfdb_ann" / "mitdb_100" / "100.atr.ref.json").read_text())
    assert len(record.annotations) == 2274
    assert record.annotators["atr"].sample.tolist() == ref["annotations"]["sample"]
    assert len(record.signals[0]) == 650000


def test_several_annotators_merge_by_onset_and_stay_apart_in_extras(tmp_path):
    files = _small_record() | {"r.atr": write_mit([Ann(10, 1), Ann(500, 5)]),
                               "r.qrs": write_mit([Ann(12, 1)]),
                               "r.myann": write_mit([Ann(11, 28, aux=b"(AFIB")])}
    [record] = ecgingest.read(_record_dir(tmp_path, files) / "r.hea")
    assert [a.text for a in record.annotations] == ["N", "+ (AFIB", "N", "V"]
    assert sorted(record.annotators) == ["atr", "myann", "qrs"]
    assert record.annotators["qrs"].record_name == "r"


def test_multi_segment_record_counts_annotations_at_the_master_frame_rate(tmp_path):
    shutil.copytree(FIXTURES / "wfdb" / "multiseg_041s", tmp_path / "m")
    (tmp_path / "m" / "041s.atr").write_bytes(write_mit([Ann(125, 1), Ann(1000, 1)]))
    [record] = ecgingest.read(tmp_path / "m" / "041s.hea")
    assert [a.onset for a in record.annotations] == [1.0, 8.0]


def test_damaged_annotation_file_keeps_the_record_with_a_warning(tmp_path):
    files = _small_record() | {"r.atr": write_mit([Ann(10, 1), Ann(20, 1)], end=False)}
    d = _record_dir(tmp_path, files)
    with pytest.warns(EcgWarning, match="r.atr"):
        [record] = ecgingest.read(d / "r.hea")
    assert len(record.signals[0]) == 1000 and len(record.annotations) == 2
    result = ecgingest.ingest(d, strict=False)
    assert not result.skipped
    with pytest.raises(TruncatedError):
        ecgingest.read(d / "r.hea", strict=True)


def test_unknown_extension_is_an_annotation_file_only_when_it_reads_cleanly(tmp_path):
    files = _small_record() | {"r.notes": b"this is not binary annotation data\n",
                               "r.beats": write_mit([Ann(3, 1)])}
    result = ecgingest.ingest(_record_dir(tmp_path, files))
    [record] = result.records
    assert list(record.annotators) == ["beats"]
    assert [s.path for s in result.skipped] == ["r.notes"]


def test_annotation_file_inside_a_zip_with_its_record():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in (_small_record() | {"r.atr": write_mit([Ann(5, 1)])}).items():
            zf.writestr(f"rec/{name}", data)
    result = ecgingest.ingest(buf.getvalue())
    assert not result.skipped and not result.errors
    assert result.records[0].annotators["atr"].sample.tolist() == [5]
    assert "rec/r.atr" in result.records[0].sources


def test_annotation_file_without_its_header_is_skipped():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("100.atr", write_mit([Ann(5, 1)]))
        zf.writestr("other.hea", write_header("other", [("other.dat", "16", [1])], nframes=1))
        zf.writestr("other.dat", pack(16, [np.array([1])], [1]))
    result = ecgingest.ingest(buf.getvalue())
    assert [s.path for s in result.skipped] == ["100.atr"]
    assert "other" == result.records[0].name and "annotators" not in result.records[0].extras


def test_failed_record_names_its_annotation_file_in_the_error(tmp_path):
    files = _small_record() | {"r.atr": write_mit([Ann(5, 1)])}
    del files["r.dat"]
    result = ecgingest.ingest(_record_dir(tmp_path, files))
    assert not result.records and not result.skipped
    assert "r.atr" in result.errors[0].paths


def test_record_annotation_total_is_bounded_by_the_limits(tmp_path):
    files = _small_record() | {"r.atr": write_mit([Ann(i, 1) for i in range(1, 8)]),
                               "r.qrs": write_mit([Ann(i, 1) for i in range(1, 8)])}
    result = ecgingest.ingest(_record_dir(tmp_path, files),
                              limits=ecgingest.Limits(max_annotations=10))
    assert not result.records
    assert isinstance(result.errors[0].error, LimitExceededError)


def test_inspect_counts_annotations_without_decoding_samples(tmp_path):
    from ecgingest.ingest import inspect_upload

    files = _small_record() | {"r.atr": write_mit([Ann(5, 1), Ann(9, 1)])}
    [info], skipped, errors = inspect_upload(_record_dir(tmp_path, files))
    assert info.annotations == 2 and not skipped and not errors


# --------------------------------------------------------------------------- hostile bytes


@st.composite
def mutated(draw):
    data = bytearray(write_mit(draw(annotation_lists(max_size=12)),
                               time_resolution=draw(st.sampled_from([None, 360.0]))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[:draw(st.integers(0, len(data)))]
        else:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


@given(mutated(), st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_bytes_give_annotations_or_a_typed_error(data, strict):
    try:
        ann = _read(data, strict=strict)
    except EcgIngestError:
        assert strict
        return
    assert len({len(ann.sample), len(ann.symbol), len(ann.subtype), len(ann.chan),
                len(ann.num), len(ann.aux_note)}) == 1


@given(mutated())
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.function_scoped_fixture])
def test_mutated_annotation_file_on_disk_never_costs_the_record(tmp_path_factory, data):
    d = _record_dir(tmp_path_factory.mktemp("mut"), _small_record() | {"r.atr": data})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        [record] = ecgingest.read(d / "r.hea")
    assert len(record.signals[0]) == 1000
    try:
        ecgingest.read(d / "r.hea", strict=True)
    except EcgIngestError:
        pass


@given(mutated())
@settings(max_examples=40)
def test_mutated_annotation_file_in_a_zip_never_costs_the_record(data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in (_small_record() | {"r.atr": data}).items():
            zf.writestr(name, blob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EcgWarning)
        result = ecgingest.ingest(buf.getvalue())
    assert len(result.records) == 1 and not result.errors and not result.skipped
    assert len(result.records[0].signals[0]) == 1000


def test_pool_reader_attaches_annotations_for_direct_callers():
    files = _small_record() | {"r.atr": write_mit([Ann(5, 1)])}
    pool = {n: Entry.from_bytes(n, d) for n, d in files.items()}
    [outcome] = fw.read_pool(pool, ["r.hea"], strict=True)
    assert outcome.files == ("r.hea", "r.dat", "r.atr")
    assert outcome.record.annotations[0].onset == 5 / 250


@pytest.mark.parametrize("name, data, named", [
    ("100.atr", b"not even annotation bytes", True),
    ("x.beats", write_mit([Ann(3, 1)]), True),
    ("x.notes", b"free text\n", False),
    ("noextension", write_mit([Ann(3, 1)]), False),
])
def test_unused_annotation_file_is_named_as_one_missing_its_header(name, data, named):
    from ecgingest.formats._base import Probe

    reason = fw.FORMAT.unused_file_reason(Probe.of_bytes(data, name))
    assert (reason is not None) == named
    if named:
        assert f"{name.rpartition('.')[0]}.hea" in reason


def test_mit_file_starting_like_an_aha_file_is_read_as_mit_when_only_mit_fits():
    # code 20 at time 0 is the word 0x5000: bytes NUL 'P', the C library's AHA test
    data = write_mit([Ann(0, 20), Ann(7, 1)])
    assert data[:2] == b"\0P"
    ann = ecgingest.read_annotations(data, strict=True)
    assert ann.format_detail == "MIT" and ann.code.tolist() == [20, 1]
    aha = ecgingest.read_annotations(write_aha([Ann(0, 12), Ann(7, 1)]), strict=True)
    assert aha.format_detail == "AHA" and aha.code.tolist() == [12, 1]


def test_unreadable_header_beside_a_path_leaves_the_rate_unknown_with_a_warning(tmp_path):
    (tmp_path / "r.hea").write_bytes(b"# only a comment\n")
    (tmp_path / "r.atr").write_bytes(write_mit([Ann(5, 1)]))
    with pytest.warns(EcgWarning, match="r.hea"):
        ann = ecgingest.read_annotations(tmp_path / "r.atr")
    assert ann.fs is None and "r.hea" in ann.warnings[0]
    with pytest.raises(EcgIngestError):
        ecgingest.read_annotations(tmp_path / "r.atr", strict=True)
