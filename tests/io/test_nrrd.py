"""The NRRD format module (mitk.io.nrrd) on plain NumPy arrays.

Round trips of every pixel type, every header variant of the NRRD format page, hostile files, and
cross-checks with pynrrd and SimpleITK (used only here, as independent readers and writers).
"""

import bz2
import gzip
import os
import random
import zlib

import numpy as np
import pytest

from mitk.errors import ArgumentError, CorruptFileError, UnsupportedFormatError
from mitk.io import _streams, nrrd
from mitk.io._info import ImageInfo
from mitk_testing import Recorder, numpy_allocator, sample_array, temporaries

PIXEL_TYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
               "float32", "float64", "complex64", "complex128")
BAD = (CorruptFileError, UnsupportedFormatError)
C, S = np.cos(0.4), np.sin(0.4)
SHEARED = np.array([[C, -S, 0.2], [S, C, 0.0], [0.1, 0.0, 1.0]])
SHEARED /= np.linalg.norm(SHEARED, axis=0)  # unit columns: a file stores spacing * direction


def load(path, **options):
    rec = Recorder()
    info = nrrd.read(str(path), rec, **options)
    assert len(rec.calls) == 1
    arr = rec.calls[0]
    assert arr.shape == info.full_shape and arr.dtype == info.dtype
    return arr, info


def refuse(path, exc=BAD, match=None, in_data=False, **options):
    """Reading must fail with ``exc`` naming the file.

    Header errors and data that cannot fit are found before anything is allocated; only errors
    inside the data themselves (``in_data``: bad values, a damaged stream) come after.
    """
    rec = Recorder()
    with pytest.raises(exc, match=match) as err:
        nrrd.read(str(path), rec, **options)
    assert os.path.basename(str(path)) in str(err.value)
    if not in_data:
        assert rec.calls == []
    return err.value


def save(path, arr, channels=1, **kw):
    options = {k: kw.pop(k) for k in ("compression", "compression_level") if k in kw}
    ndim = arr.ndim - (1 if channels > 1 else 0)
    info = ImageInfo(dtype=arr.dtype, shape=arr.shape[:ndim], channels=channels, **kw)
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    nrrd.write(str(path), arr, info, **options)
    return info


def sample(name, shape, seed=0):
    return sample_array(name, shape, seed, extremes=True)


def write_nrrd(path, header, data=b"", magic="NRRD0004"):
    path.write_bytes((magic + "\n" + header + "\n").encode() + data)
    return path


def header_of(path):
    return path.read_bytes().split(b"\n\n")[0].decode()


def fields_of(path):
    out = {}
    for line in header_of(path).splitlines()[1:]:
        if ": " in line and not line.startswith("#") and ":=" not in line:
            k, v = line.split(": ", 1)
            out[k] = v
    return out


def no_temp_files(directory):
    return not temporaries(directory)


# -- round trips ----------------------------------------------------------------------------------

SHAPES = {(2, 1): (5, 7), (3, 1): (3, 5, 7), (4, 1): (4, 3, 5, 7),
          (2, 3): (5, 7, 3), (3, 3): (3, 5, 7, 3), (4, 3): (2, 3, 5, 7, 3)}


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr"])
@pytest.mark.parametrize("name", PIXEL_TYPES)
@pytest.mark.parametrize("ndim,channels", sorted(SHAPES))
def test_round_trip_every_type(tmp_path, ext, name, ndim, channels):
    arr = sample(name, SHAPES[ndim, channels], seed=ndim * 10 + channels)
    geometry = dict(spacing=(0.5, 0.75, 1.25), origin=(1.0, -2.0, 3.5), direction=SHEARED)
    if ndim == 2:
        geometry = dict(spacing=(0.5, 0.75, 1.0), origin=(1.0, -2.0, 0.0), direction=np.eye(3))
    path = tmp_path / f"img{ext}"
    if name.startswith("complex") and channels > 1:
        with pytest.raises(UnsupportedFormatError, match="complex"):
            save(path, arr, channels, **geometry)
        assert os.listdir(tmp_path) == []
        return
    info = save(path, arr, channels, time_origin=10.0, time_spacing=2.5,
                properties={"study": "round trip"}, **geometry)
    back, got = load(path)
    expected = arr.astype(np.uint8) if name == "bool" else arr
    assert back.dtype == expected.dtype
    assert back.tobytes() == expected.tobytes()  # bit-exact, NaN included
    assert got.shape == info.shape and got.channels == channels and got.ndim == ndim
    np.testing.assert_allclose(got.spacing, geometry["spacing"], rtol=1e-12)
    np.testing.assert_allclose(got.origin, geometry["origin"], atol=1e-12)
    np.testing.assert_allclose(got.direction, geometry["direction"], atol=1e-12)
    if ndim == 4:
        assert (got.time_origin, got.time_spacing) == (10.0, 2.5)
    assert got.properties["study"] == "round trip"
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize("ext", [".nrrd", ".nhdr"])
@pytest.mark.parametrize("compression,level", [(None, None), ("raw", None), ("gzip", None),
                                               ("gzip", 9), ("bzip2", None), ("bzip2", 3)])
def test_every_encoding_round_trips(tmp_path, ext, compression, level):
    arr = sample("int16", (6, 7, 8), seed=3)
    path = tmp_path / f"x{ext}"
    save(path, arr, compression=compression, compression_level=level)
    assert np.array_equal(load(path)[0], arr)
    encoding = {None: "raw", "raw": "raw"}.get(compression, compression)
    assert fields_of(path)["encoding"] == encoding
    if ext == ".nhdr":
        suffix = {"raw": ".raw", "gzip": ".raw.gz", "bzip2": ".raw.bz2"}[encoding]
        assert fields_of(path)["data file"] == "x" + suffix
        data = (tmp_path / ("x" + suffix)).read_bytes()
        raw = {"raw": lambda b: b, "gzip": gzip.decompress, "bzip2": bz2.decompress}[encoding]
        assert raw(data) == arr.tobytes()
        assert sorted(os.listdir(tmp_path)) == sorted(["x" + suffix, "x.nhdr"])


def test_one_dimensional_file_loads_as_one_row_and_saves_as_2d(tmp_path):
    p = write_nrrd(tmp_path / "one.nrrd", "type: uchar\ndimension: 1\nsizes: 7\nspacings: 2.5\n"
                   "axis mins: 4\nencoding: raw\n", bytes(range(7)))
    arr, info = load(p)
    assert arr.shape == (1, 7) and info.ndim == 2
    assert info.spacing == (2.5, 1.0, 1.0) and info.origin == (4.0, 0.0, 0.0)
    np.testing.assert_array_equal(arr[0], np.arange(7))
    nrrd.write(str(tmp_path / "back.nrrd"), arr, info)
    assert fields_of(tmp_path / "back.nrrd")["sizes"] == "7 1"
    assert load(tmp_path / "back.nrrd")[0].shape == (1, 7)


def test_declared_4d_with_one_step_stays_4d(tmp_path):
    arr = sample("float32", (1, 2, 3, 4))
    save(tmp_path / "x.nrrd", arr)
    back, info = load(tmp_path / "x.nrrd")
    assert info.shape == (1, 2, 3, 4) and info.ndim == 4


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("options,exc", [
    ({"compression": "lz4"}, ArgumentError), ({"compression": "GZIP"}, ArgumentError),
    ({"compression": 5}, TypeError), ({"compression_level": 3}, ArgumentError),
    ({"compression": "raw", "compression_level": 3}, ArgumentError),
    ({"compression": "gzip", "compression_level": 0}, ArgumentError),
    ({"compression": "gzip", "compression_level": 10}, ArgumentError),
    ({"compression": "bzip2", "compression_level": 2.0}, TypeError),
    ({"compression": "gzip", "compression_level": True}, TypeError),
    ({"nifti_version": 2}, TypeError), ({"colour": "blue"}, TypeError),
])
def test_bad_write_options(tmp_path, options, exc):
    arr = np.zeros((3, 3), np.uint8)
    info = ImageInfo(dtype=arr.dtype, shape=arr.shape)
    with pytest.raises(exc):
        nrrd.write(str(tmp_path / "x.nrrd"), arr, info, **options)
    assert os.listdir(tmp_path) == []


def test_read_options(tmp_path):
    save(tmp_path / "x.nrrd", np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError, match="apply_scaling"):
        nrrd.read(str(tmp_path / "x.nrrd"), numpy_allocator, apply_scaling=False)
    with pytest.raises(TypeError, match="allow_external_data"):
        nrrd.read(str(tmp_path / "x.nrrd"), numpy_allocator, allow_external_data="yes")
    assert load(tmp_path / "x.nrrd", allow_external_data=True)[0].shape == (2, 2)
    assert nrrd.READ_OPTIONS == {"allow_external_data"}
    assert nrrd.WRITE_OPTIONS == {"compression", "compression_level", "compression_block_size"}
    assert nrrd.EXTENSIONS == (".nrrd", ".nhdr")


def test_compression_level_changes_the_stream(tmp_path):
    arr = np.tile(np.arange(64, dtype=np.uint8), 4096).reshape(64, 64, 64)
    save(tmp_path / "fast.nrrd", arr, compression="gzip", compression_level=1)
    save(tmp_path / "small.nrrd", arr, compression="gzip", compression_level=9)
    assert (tmp_path / "fast.nrrd").read_bytes() != (tmp_path / "small.nrrd").read_bytes()
    for name in ("fast.nrrd", "small.nrrd"):
        assert np.array_equal(load(tmp_path / name)[0], arr)


# -- types and byte order -------------------------------------------------------------------------

TYPE_ALIASES = {
    "int8": ["signed char", "int8", "int8_t", "SIGNED  CHAR"],
    "uint8": ["uchar", "unsigned char", "uint8", "uint8_t", "UChar"],
    "int16": ["short", "short int", "signed short", "signed short int", "int16", "int16_t"],
    "uint16": ["ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"],
    "int32": ["int", "signed int", "int32", "int32_t"],
    "uint32": ["uint", "unsigned int", "uint32", "uint32_t"],
    "int64": ["longlong", "long long", "long long int", "signed long long",
              "signed long long int", "int64", "int64_t"],
    "uint64": ["ulonglong", "unsigned long long", "unsigned long long int", "uint64",
               "uint64_t"],
    "float32": ["float", "FLOAT"],
    "float64": ["double", "Double"],
}


@pytest.mark.parametrize("dtype,alias", [(d, a) for d, names in TYPE_ALIASES.items()
                                         for a in names])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_type_aliases_and_byte_orders(tmp_path, dtype, alias, endian):
    arr = sample(dtype, (3, 4), seed=7)
    file_dtype = arr.dtype.newbyteorder("<" if endian == "little" else ">")
    p = write_nrrd(tmp_path / "t.nrrd", f"type: {alias}\ndimension: 2\nsizes: 4 3\n"
                   f"endian: {endian.upper()}\nencoding: raw\n", arr.astype(file_dtype).tobytes())
    back, info = load(p)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.tobytes() == arr.tobytes()


@pytest.mark.parametrize("encoding", ["raw", "RAW", "gz", "gzip", "GZip", "bz2", "bzip2", "hex",
                                      "HEX"])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_binary_encodings_in_both_byte_orders(tmp_path, encoding, endian):
    arr = sample("float64", (2, 3, 4), seed=1)
    raw = arr.astype(arr.dtype.newbyteorder(endian)).tobytes()
    data = {"raw": raw, "gz": gzip.compress(raw), "gzip": zlib.compress(raw),
            "bz2": bz2.compress(raw), "bzip2": bz2.compress(raw),
            "hex": "\n".join(raw[i:i + 16].hex() for i in range(0, len(raw), 16)).encode()}
    p = write_nrrd(tmp_path / "e.nrrd", "type: double\ndimension: 3\nsizes: 4 3 2\nendian: "
                   f"{'little' if endian == '<' else 'big'}\nencoding: {encoding}\n",
                   data[encoding.lower()])
    assert load(p)[0].tobytes() == arr.tobytes()


@pytest.mark.parametrize("encoding", ["ascii", "text", "txt", "ASCII"])
def test_ascii_data(tmp_path, encoding):
    values = "1 -2 3\n4,5 ,6\n\t7 8 -128 127 0 1\n"
    p = write_nrrd(tmp_path / "a.nrrd", f"type: signed char\ndimension: 2\nsizes: 3 4\n"
                   f"encoding: {encoding}\n", values.encode())
    np.testing.assert_array_equal(load(p)[0], [[1, -2, 3], [4, 5, 6], [7, 8, -128], [127, 0, 1]])
    floats = write_nrrd(tmp_path / "f.nrrd", "type: float\ndimension: 2\nsizes: 2 2\n"
                        "encoding: ascii\n", b"1.5 nan -inf 1e-3\n")
    np.testing.assert_array_equal(load(floats)[0], np.float32([[1.5, np.nan], [-np.inf, 1e-3]]))
    big = write_nrrd(tmp_path / "u.nrrd", "type: uint64\ndimension: 2\nsizes: 2 1\n"
                     "encoding: ascii\n", b"18446744073709551615 9007199254740993\n")
    assert load(big)[0].tolist() == [[2 ** 64 - 1, 2 ** 53 + 1]]  # no float round trip
    for bad in (b"1 2 3", b"1 2 x 4", b"1 2 300 4", b"1.5 2 3 4"):
        refuse(write_nrrd(tmp_path / "bad.nrrd", "type: uchar\ndimension: 2\nsizes: 2 2\n"
                          "encoding: ascii\n", bad), CorruptFileError, "ascii", in_data=True)


def test_bool_writes_uchar_and_float16_is_refused(tmp_path):
    save(tmp_path / "m.nrrd", np.array([[True, False], [False, True]]))
    assert fields_of(tmp_path / "m.nrrd")["type"] == "uint8"
    arr, info = load(tmp_path / "m.nrrd")
    assert arr.dtype == np.uint8 and arr.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(UnsupportedFormatError, match="float16.*float32"):
        save(tmp_path / "h.nrrd", np.zeros((2, 2), np.float16))
    assert not (tmp_path / "h.nrrd").exists()


# -- header syntax --------------------------------------------------------------------------------


@pytest.mark.parametrize("magic", ["NRRD0001", "NRRD0002", "NRRD0003", "NRRD0004", "NRRD0005",
                                   "NRRD0006", "NRRD00.01"])
def test_every_magic(tmp_path, magic):
    p = write_nrrd(tmp_path / "m.nrrd", "type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\n",
                   bytes([1, 2, 3, 4]), magic=magic)
    assert load(p)[0].tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("magic", ["NRRD0007", "NRRD", "nrrd0004", "NRRD0004 ", "P5", ""])
def test_bad_magic(tmp_path, magic):
    p = write_nrrd(tmp_path / "m.nrrd", "type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\n",
                   bytes(4), magic=magic)
    refuse(p, CorruptFileError, "magic")


def test_comments_crlf_field_case_and_aliases(tmp_path):
    header = ("# a comment\r\nTYPE: short\r\n#another\r\nDimension: 2\r\nSizes: 2 2\r\n"
              "Endian: BIG\r\nEncoding: RAW\r\nByteSkip: 2\r\nSpaceDimension: 2\r\n"
              "SpaceDirections: (2,0) (0,3)\r\nspaceorigin: (1,1)\r\nOLDMIN: -5\r\n"
              "centerings: cell cell\r\nmy key:=my value\r\n\r\n")
    p = tmp_path / "c.nrrd"
    p.write_bytes(b"NRRD0004\r\n" + header.encode() + b"XX" + np.arange(4, dtype=">i2").tobytes())
    arr, info = load(p)
    assert arr.tolist() == [[0, 1], [2, 3]]
    assert info.spacing == (2.0, 3.0, 1.0) and info.origin == (1.0, 1.0, 0.0)
    assert info.properties == {"nrrd.old min": "-5", "nrrd.centers": "cell cell",
                               "my key": "my value"}


def test_key_values_and_escapes(tmp_path):
    header = ("type: uchar\ndimension: 2\nsizes: 1 1\nencoding: raw\n"
              "plain:=a value with: colon and := more\n"
              r"esc\\aped:=line one\nline two \\ back\\nslash" "\n"
              "empty:=\n"
              "spaces:=  kept  \n"
              "unknown field: x:=1\n"
              "content: a:=b\n")
    p = write_nrrd(tmp_path / "kv.nrrd", header, b"\0")
    arr, info = load(p)
    props = info.properties
    assert props["plain"] == "a value with: colon and := more"
    assert props["esc\\aped"] == "line one\nline two \\ back\\nslash"
    assert props["empty"] == "" and props["spaces"] == "  kept  "
    assert props["unknown field: x"] == "1"  # not a NRRD field, so a key/value (teem's rule)
    assert props["nrrd.content"] == "a:=b"  # a NRRD field, even with ':=' in its value
    nrrd.write(str(tmp_path / "back.nrrd"), arr, info)  # written back exactly
    assert load(tmp_path / "back.nrrd")[1].properties == props
    # an escaped line break in a key reads, but such a key cannot be written (SPEC 6.4)
    p = write_nrrd(tmp_path / "nl.nrrd", header + r"two\nlines:=v" + "\n", b"\0")
    arr, info = load(p)
    assert info.properties["two\nlines"] == "v"
    with pytest.raises(UnsupportedFormatError, match="line break"):
        nrrd.write(str(tmp_path / "nl2.nrrd"), arr, info)


def test_unknown_fields_are_kept_and_written_back(tmp_path):
    p = write_nrrd(tmp_path / "u.nrrd", "type: uchar\ndimension: 2\nsizes: 1 1\nencoding: raw\n"
                   "Vendor Thing: 42 yes\nnumber: 1\n", b"\0")
    arr, info = load(p)
    assert info.properties == {"nrrd.vendor thing": "42 yes"}
    nrrd.write(str(tmp_path / "back.nrrd"), arr, info)
    # written as a key/value, so teem-based readers (which refuse unknown fields) accept it
    assert "nrrd.vendor thing:=42 yes" in (tmp_path / "back.nrrd").read_text(errors="replace")
    assert load(tmp_path / "back.nrrd")[1].properties == info.properties


def test_descriptive_fields_become_properties_in_writer_axis_order(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(4, 3, 2)  # file: x=2, vector=3, y=4
    header = ("type: uchar\ndimension: 3\nsizes: 2 3 4\nkinds: domain 3-vector domain\n"
              'labels: "x" "the \\"vec\\"" "y"\nunits: "mm" "" "mm"\ncenters: cell ??? node\n'
              "thicknesses: 1.5 nan 2.5\ncontent: a test\nmin: 0\nmax: 23\nold min: -1\n"
              "old max: 1\nsample units: HU\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "d.nrrd", header, data.tobytes()))
    assert arr.shape == (4, 2, 3) and info.channels == 3
    np.testing.assert_array_equal(arr, data.transpose(0, 2, 1))
    props = info.properties
    assert props["nrrd.kinds"] == "3-vector domain domain"
    assert props["nrrd.labels"] == '"the \\"vec\\"" "x" "y"'
    assert props["nrrd.units"] == '"" "mm" "mm"'
    assert props["nrrd.centers"] == "??? cell node"
    assert props["nrrd.thicknesses"] == "nan 1.5 2.5"
    assert [props[f"nrrd.{k}"] for k in ("content", "min", "max", "old min", "old max",
                                         "sample units")] == ["a test", "0", "23", "-1", "1", "HU"]
    nrrd.write(str(tmp_path / "back.nrrd"), arr, info)
    fields = fields_of(tmp_path / "back.nrrd")
    assert fields["kinds"] == "3-vector domain domain"  # the kind fits 3 channels
    assert fields["labels"] == '"the \\"vec\\"" "x" "y"' and fields["centers"] == "??? cell node"
    assert fields["content"] == "a test" and fields["old max"] == "1"
    back, again = load(tmp_path / "back.nrrd")
    assert np.array_equal(back, arr) and again.properties == props


def test_per_axis_properties_that_no_longer_fit_are_not_written(tmp_path):
    arr = np.zeros((2, 3, 4), np.uint8)
    save(tmp_path / "x.nrrd", arr, properties={"nrrd.labels": '"a" "b"', "nrrd.units": '"mm"',
                                               "nrrd.space units": '"mm"'})
    fields = fields_of(tmp_path / "x.nrrd")
    assert "labels" not in fields and "units" not in fields and "space units" not in fields


def test_properties_of_other_formats_are_skipped_and_modelled_fields_ignored(tmp_path):
    save(tmp_path / "x.nrrd", np.zeros((2, 2), np.uint8),
         properties={"nifti.descrip": "d", "meta.Modality": "MR", "nrrd.type": "double",
                     "nrrd.sizes": "9 9", "nrrd.space": "RAS", "nrrd.encoding": "gzip",
                     "n": 3, "f": 0.1, "b": True, "l": [1, 2.5, "x"]})
    text = header_of(tmp_path / "x.nrrd")
    assert "descrip" not in text and "Modality" not in text
    fields = fields_of(tmp_path / "x.nrrd")
    assert fields["type"] == "uint8" and fields["sizes"] == "2 2" and fields["encoding"] == "raw"
    assert load(tmp_path / "x.nrrd")[1].properties == {"n": "3", "f": "0.1", "b": "True",
                                                       "l": "1 2.5 x"}


@pytest.mark.parametrize("props,exc", [
    ({"": "v"}, UnsupportedFormatError), ({"a:=b": "v"}, UnsupportedFormatError),
    ({"a=b": "v"}, UnsupportedFormatError), ({"a\nb": "v"}, UnsupportedFormatError),
    ({"#hidden": "v"}, UnsupportedFormatError), ({" lead": "v"}, UnsupportedFormatError),
    ({"type: short": "v"}, UnsupportedFormatError), ({"k": "a\rb"}, UnsupportedFormatError),
    ({"k": "\ud800"}, UnsupportedFormatError), ({"nrrd.content": "two\nlines"},
                                                UnsupportedFormatError),
    ({"nrrd.old min": "low"}, UnsupportedFormatError),
    ({"nrrd.centers": "cell middle node"}, UnsupportedFormatError),
    ({"nrrd.measurement frame": "(1,0,0) (0,1)"}, UnsupportedFormatError),
    ({"k": {"a": 1}}, TypeError), ({3: "v"}, TypeError),
])
def test_unwritable_properties_fail_before_writing(tmp_path, props, exc):
    (tmp_path / "x.nhdr").write_bytes(b"old header")
    with pytest.raises(exc):
        save(tmp_path / "x.nhdr", np.zeros((2, 2, 2), np.uint8), properties=props)
    assert sorted(os.listdir(tmp_path)) == ["x.nhdr"]
    assert (tmp_path / "x.nhdr").read_bytes() == b"old header"


# -- writer header --------------------------------------------------------------------------------


def test_writer_header_3d(tmp_path):
    arr = np.zeros((2, 3, 4), np.int16)
    save(tmp_path / "x.nrrd", arr, spacing=(0.5, 2.0, 3.0), origin=(1.0, 2.0, 3.0),
         direction=np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))
    text = header_of(tmp_path / "x.nrrd")
    assert text.splitlines()[0] == "NRRD0005"
    f = fields_of(tmp_path / "x.nrrd")
    assert f["space"] == "left-posterior-superior" and f["dimension"] == "3"
    assert f["sizes"] == "4 3 2" and f["kinds"] == "domain domain domain"
    assert f["space directions"] == "(0.0,0.5,0.0) (2.0,0.0,0.0) (0.0,0.0,-3.0)"
    assert f["space origin"] == "(1.0,2.0,3.0)" and f["type"] == "int16"
    assert f["endian"] == ("little" if np.little_endian else "big")


def test_writer_header_2d_in_and_out_of_plane(tmp_path):
    save(tmp_path / "flat.nrrd", np.zeros((3, 4), np.uint8), spacing=(0.5, 2.0, 1.0),
         origin=(1.0, 2.0, 0.0))
    f = fields_of(tmp_path / "flat.nrrd")
    assert f["space dimension"] == "2" and "space" not in f and "endian" not in f
    assert f["space directions"] == "(0.5,0.0) (0.0,2.0)" and f["space origin"] == "(1.0,2.0)"
    tilted = np.array([[1.0, 0.0, 0.0], [0.0, C, -S], [0.0, S, C]])
    save(tmp_path / "tilt.nrrd", np.zeros((3, 4), np.uint8), direction=tilted,
         origin=(0.0, 0.0, 5.0))
    f = fields_of(tmp_path / "tilt.nrrd")
    assert f["space"] == "left-posterior-superior" and f["space origin"] == "(0.0,0.0,5.0)"
    _, info = load(tmp_path / "tilt.nrrd")
    np.testing.assert_allclose(info.direction[:, :2], tilted[:, :2], atol=1e-15)
    np.testing.assert_allclose(info.direction[:, 2], np.cross(tilted[:, 0], tilted[:, 1]))
    assert info.origin == (0.0, 0.0, 5.0)


def test_writer_header_4d_is_itk_style(tmp_path):
    save(tmp_path / "t.nrrd", np.zeros((2, 3, 4, 5, 3), np.float32), channels=3,
         time_origin=-1.5, time_spacing=0.25)
    f = fields_of(tmp_path / "t.nrrd")
    assert f["space dimension"] == "4" and f["dimension"] == "5"
    assert f["sizes"] == "3 5 4 3 2"
    assert f["space directions"] == ("none (1.0,0.0,0.0,0.0) (0.0,1.0,0.0,0.0) "
                                     "(0.0,0.0,1.0,0.0) (0.0,0.0,0.0,0.25)")
    assert f["kinds"] == "vector domain domain domain domain"
    assert f["space origin"] == "(0.0,0.0,0.0,-1.5)"


@pytest.mark.parametrize("dtype,channels,props,kind", [
    ("uint8", 3, {}, "RGB-color"), ("uint8", 4, {}, "RGBA-color"), ("uint8", 2, {}, "vector"),
    ("int16", 3, {}, "vector"), ("float32", 4, {}, "vector"),
    ("float32", 6, {"nrrd.kinds": "3D-symmetric-matrix domain domain domain"},
     "3D-symmetric-matrix"),
    ("float32", 7, {"nrrd.kinds": "3D-symmetric-matrix domain domain domain"}, "vector"),
    ("uint8", 3, {"nrrd.kinds": "rgb domain domain domain"}, "RGB-color"),
    ("uint8", 3, {"nrrd.kinds": "list domain domain domain"}, "list"),
    ("uint8", 3, {"nrrd.kinds": "domain domain domain domain"}, "RGB-color"),
    ("int16", 9, {"nrrd.kinds": "covariant-vector"}, "covariant-vector"),
])
def test_component_kinds(tmp_path, dtype, channels, props, kind):
    save(tmp_path / "k.nrrd", np.zeros((2, 3, 4, channels), dtype), channels=channels,
         properties=props)
    assert fields_of(tmp_path / "k.nrrd")["kinds"] == f"{kind} domain domain domain"
    assert load(tmp_path / "k.nrrd")[1].channels == channels


def test_complex_pixels_use_a_complex_axis(tmp_path):
    arr = sample("complex128", (2, 3, 4), seed=5)
    save(tmp_path / "c.nrrd", arr)
    f = fields_of(tmp_path / "c.nrrd")
    assert f["type"] == "double" and f["sizes"] == "2 4 3 2"
    assert f["kinds"].split()[0] == "complex" and f["space directions"].startswith("none ")
    back, info = load(tmp_path / "c.nrrd")
    assert back.dtype == np.complex128 and info.channels == 1 and back.tobytes() == arr.tobytes()


@pytest.mark.parametrize("name,written", [("LIST.nhdr", "./LIST.raw"),
                                          ("SKIPLIST x.nhdr", "./SKIPLIST x.raw"),
                                          ("with space.nhdr", "with space.raw"),
                                          ("UPPER.NHDR", "UPPER.raw")])
def test_detached_data_file_names(tmp_path, name, written):
    arr = sample("uint16", (2, 3, 4))
    save(tmp_path / name, arr)
    assert fields_of(tmp_path / name)["data file"] == written
    assert np.array_equal(load(tmp_path / name)[0], arr)


def test_detached_name_that_reads_as_a_pattern_is_refused(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="%"):
        save(tmp_path / "img%03d.nhdr", np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []


# -- geometry -------------------------------------------------------------------------------------

SPACES = [("right-anterior-superior", (-1, -1, 1)), ("RAS", (-1, -1, 1)),
          ("right anterior superior", (-1, -1, 1)), ("left-anterior-superior", (1, -1, 1)),
          ("LAS", (1, -1, 1)), ("left-posterior-superior", (1, 1, 1)), ("LPS", (1, 1, 1)),
          ("leftposteriorsuperior", (1, 1, 1)), ("scanner-xyz", (1, 1, 1)),
          ("3D-right-handed", (1, 1, 1)), ("3D-left-handed", (1, 1, -1)),
          ("3d left handed", (1, 1, -1))]


@pytest.mark.parametrize("space,flip", SPACES)
def test_spaces_become_lps(tmp_path, space, flip):
    header = (f"type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: {space}\n"
              "space directions: (0.5,0.1,0) (0,0.6,0) (0,0,0.7)\nspace origin: (10,20,30)\n")
    _, info = load(write_nrrd(tmp_path / "s.nrrd", header, bytes(8)))
    f = np.diag(flip).astype(float)
    axes = f @ np.array([[0.5, 0, 0], [0.1, 0.6, 0], [0, 0, 0.7]])
    np.testing.assert_allclose(info.direction * info.spacing, axes, atol=1e-15)
    np.testing.assert_allclose(info.origin, f @ [10, 20, 30])


@pytest.mark.parametrize("space,flip", [("right-anterior-superior-time", (-1, -1, 1)),
                                        ("RAST", (-1, -1, 1)), ("LAST", (1, -1, 1)),
                                        ("left-posterior-superior-time", (1, 1, 1)),
                                        ("scanner-xyz-time", (1, 1, 1)),
                                        ("3D-right-handed-time", (1, 1, 1)),
                                        ("3D-left-handed-time", (1, 1, -1))])
def test_time_spaces(tmp_path, space, flip):
    data = np.arange(2 * 2 * 2 * 3, dtype=np.uint8)
    header = (f"type: uchar\ndimension: 4\nsizes: 2 2 2 3\nencoding: raw\nspace: {space}\n"
              "space directions: (2,0,0,0) (0,3,0,0) (0,0,4,0) (0,0,0,0.5)\n"
              "space origin: (1,2,3,7)\n")
    arr, info = load(write_nrrd(tmp_path / "t.nrrd", header, data.tobytes()))
    assert info.shape == (3, 2, 2, 2) and info.time_spacing == 0.5 and info.time_origin == 7.0
    np.testing.assert_array_equal(arr.ravel(), data)
    np.testing.assert_allclose(info.direction, np.diag(flip))
    np.testing.assert_allclose(info.origin, np.multiply(flip, (1, 2, 3)))
    # a time axis given by kind instead of a direction
    header = (f"type: uchar\ndimension: 4\nsizes: 2 2 2 3\nencoding: raw\nspace: {space}\n"
              "kinds: space space space time\nspacings: nan nan nan 4\n"
              "space directions: (2,0,0,0) (0,3,0,0) (0,0,4,0) none\n")
    _, info = load(write_nrrd(tmp_path / "k.nrrd", header, data.tobytes()))
    assert info.shape == (3, 2, 2, 2) and info.time_spacing == 4.0


def test_space_dimension_without_space_is_taken_as_is(tmp_path):
    header = ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace dimension: 3\n"
              "space directions: (0,-2,0) (1,0,0) (0,0,3)\nspace origin: (4,5,6)\n")
    _, info = load(write_nrrd(tmp_path / "sd.nrrd", header, bytes(8)))
    np.testing.assert_array_equal(info.direction, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    assert info.spacing == (2.0, 1.0, 3.0) and info.origin == (4.0, 5.0, 6.0)


def test_itk_style_4d(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype="<i2")
    header = ("type: short\ndimension: 4\nspace dimension: 4\nsizes: 5 4 3 2\n"
              "space directions: (0,1.5,0,0) (2,0,0,0) (0,0,-3,0) (0,0,0,0.5)\n"
              "kinds: domain domain domain domain\nendian: little\nencoding: raw\n"
              "space origin: (1,2,3,10)\n")
    arr, info = load(write_nrrd(tmp_path / "itk.nrrd", header, data.tobytes()))
    assert arr.shape == (2, 3, 4, 5) and np.array_equal(arr.ravel(), data)
    assert info.spacing == (1.5, 2.0, 3.0) and info.origin == (1.0, 2.0, 3.0)
    np.testing.assert_array_equal(info.direction, [[0, 1, 0], [1, 0, 0], [0, 0, -1]])
    assert (info.time_origin, info.time_spacing) == (10.0, 0.5)


def test_zero_time_step_reads_as_one(tmp_path):
    header = ("type: uchar\ndimension: 4\nspace dimension: 4\nsizes: 2 2 2 3\nencoding: raw\n"
              "space directions: (1,0,0,0) (0,1,0,0) (0,0,1,0) (0,0,0,0)\n")
    _, info = load(write_nrrd(tmp_path / "z.nrrd", header, bytes(24)))
    assert info.shape == (3, 2, 2, 2) and info.time_spacing == 1.0
    header = header.replace("space dimension: 4", "space: LPS").replace(",0)", ")")
    refuse(write_nrrd(tmp_path / "s.nrrd", header, bytes(24)), CorruptFileError, "zero vector")


@pytest.mark.parametrize("vectors", ["(1,0,0,0.5) (0,1,0,0) (0,0,1,0) (0,0,0,1)",
                                     "(1,0,0,0) (0,1,0,0) (0,0,1,0) (0.1,0,0,1)"])
def test_4d_axes_mixing_space_and_time_are_refused(tmp_path, vectors):
    header = ("type: uchar\ndimension: 4\nspace dimension: 4\nsizes: 2 2 2 2\nencoding: raw\n"
              f"space directions: {vectors}\n")
    refuse(write_nrrd(tmp_path / "mix.nrrd", header, bytes(16)), UnsupportedFormatError, "time")


def test_fourth_domain_axis_is_time(tmp_path):
    data = bytes(range(24))
    header = ("type: uchar\ndimension: 4\nsizes: 2 2 2 3\nspace: LPS\n"
              "space directions: (1,0,0) (0,1,0) (0,0,1) none\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "itk4.nrrd", header, data))
    assert info.shape == (3, 2, 2, 2) and info.channels == 1
    header = "type: uchar\ndimension: 4\nsizes: 2 2 2 3\nspacings: 1 1 1 2\nencoding: raw\n"
    arr, info = load(write_nrrd(tmp_path / "nospace.nrrd", header, data))
    assert info.shape == (3, 2, 2, 2) and info.time_spacing == 2.0
    assert arr.tobytes() == data


def test_no_space_uses_spacings_and_axis_mins(tmp_path):
    header = ("type: uchar\ndimension: 3\nsizes: 2 3 4\nspacings: 0.5 -2 nan\n"
              "axis mins: 10 nan -1\nencoding: raw\n")
    _, info = load(write_nrrd(tmp_path / "sp.nrrd", header, bytes(24)))
    assert info.spacing == (0.5, 2.0, 1.0) and info.origin == (10.0, 0.0, -1.0)
    np.testing.assert_array_equal(info.direction, np.diag([1.0, -1.0, 1.0]))
    header = ("type: uchar\ndimension: 2\nsizes: 3 5\naxis mins: 0 10\naxis maxs: 1 2\n"
              "encoding: raw\n")
    _, info = load(write_nrrd(tmp_path / "mm.nrrd", header, bytes(15)))
    assert info.spacing == (0.5, 2.0, 1.0) and info.origin == (0.0, 10.0, 0.0)
    np.testing.assert_array_equal(info.direction, np.diag([1.0, -1.0, 1.0]))
    header = ("type: uchar\ndimension: 4\nsizes: 2 2 2 3\nkinds: domain domain domain time\n"
              "spacings: 1 1 1 0\naxis mins: 0 0 0 5\nencoding: raw\n")
    _, info = load(write_nrrd(tmp_path / "t.nrrd", header, bytes(24)))
    assert (info.time_origin, info.time_spacing) == (5.0, 1.0)  # a zero step reads as 1


@pytest.mark.parametrize("units,scale,kept", [
    ('"mm" "mm" "mm"', (1, 1, 1), False), ('"cm" "cm" "cm"', (10, 10, 10), False),
    ('"m" "mm" "um"', (1000, 1, 1e-3), False), ('"MM" "millimeter" "micron"', (1, 1, 1e-3), False),
    ('"furlong" "mm" "mm"', (1, 1, 1), True), ('"" "" ""', (1, 1, 1), True),
])
def test_space_units(tmp_path, units, scale, kept):
    header = ("type: uchar\ndimension: 3\nsizes: 1 1 1\nencoding: raw\nspace: LPS\n"
              f"space directions: (1,0,0) (0,2,0) (0,0,3)\nspace origin: (1,1,1)\n"
              f"space units: {units}\n")
    _, info = load(write_nrrd(tmp_path / "u.nrrd", header, b"\0"))
    np.testing.assert_allclose(info.spacing, np.multiply(scale, (1, 2, 3)))
    np.testing.assert_allclose(info.origin, scale)
    assert (info.properties.get("nrrd.space units") == units) == kept
    if kept:  # written back as given, so the values keep their meaning
        nrrd.write(str(tmp_path / "b.nrrd"), np.zeros((1, 1, 1), np.uint8), info)
        assert fields_of(tmp_path / "b.nrrd")["space units"] == units


def test_time_units_convert_to_ms(tmp_path):
    header = ("type: uchar\ndimension: 4\nsizes: 1 1 1 2\nencoding: raw\nspace: RAST\n"
              "space directions: (1,0,0,0) (0,1,0,0) (0,0,1,0) (0,0,0,0.5)\n"
              'space origin: (0,0,0,2)\nspace units: "cm" "cm" "cm" "s"\n')
    _, info = load(write_nrrd(tmp_path / "t.nrrd", header, b"\0\0"))
    assert info.spacing == (10.0, 10.0, 10.0)
    assert (info.time_origin, info.time_spacing) == (2000.0, 500.0)


def test_measurement_frame_is_kept_in_lps_and_written_back(tmp_path):
    header = ("type: float\ndimension: 4\nsizes: 3 2 2 2\nkinds: 3-vector domain domain domain\n"
              "space: RAS\nspace directions: none (1,0,0) (0,1,0) (0,0,1)\nendian: little\n"
              "measurement frame: (1,0,0) (0,0,1) (0,-1,0)\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "mf.nrrd", header, bytes(96)))
    assert info.properties["nrrd.measurement frame"] == \
        "(-1.0,0.0,0.0) (0.0,0.0,1.0) (0.0,1.0,0.0)"
    nrrd.write(str(tmp_path / "back.nrrd"), arr, info)
    assert fields_of(tmp_path / "back.nrrd")["measurement frame"] == \
        "(-1.0,0.0,0.0) (0.0,0.0,1.0) (0.0,1.0,0.0)"
    assert load(tmp_path / "back.nrrd")[1].properties == info.properties
    # a 3D frame fits a 4D image (time added) and a 2D one when it leaves z alone
    save(tmp_path / "t.nrrd", np.zeros((2, 2, 2, 2), np.uint8),
         properties={"nrrd.measurement frame": "(0,1,0) (1,0,0) (0,0,1)"})
    assert fields_of(tmp_path / "t.nrrd")["measurement frame"] == \
        "(0.0,1.0,0.0,0.0) (1.0,0.0,0.0,0.0) (0.0,0.0,1.0,0.0) (0.0,0.0,0.0,1.0)"
    save(tmp_path / "f.nrrd", np.zeros((2, 2), np.uint8),
         properties={"nrrd.measurement frame": "(0,1,0) (1,0,0) (0,0,1)"})
    f = fields_of(tmp_path / "f.nrrd")
    assert f["space dimension"] == "2" and f["measurement frame"] == "(0.0,1.0) (1.0,0.0)"
    save(tmp_path / "g.nrrd", np.zeros((2, 2), np.uint8),
         properties={"nrrd.measurement frame": "(0,0,1) (1,0,0) (0,1,0)"})
    assert fields_of(tmp_path / "g.nrrd")["space"] == "left-posterior-superior"


def test_sheared_direction_is_kept_exactly(tmp_path):
    header = ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
              "space directions: (1,0,0) (1,1,0) (0.25,0.5,2)\n")
    _, info = load(write_nrrd(tmp_path / "sh.nrrd", header, bytes(8)))
    np.testing.assert_allclose(info.direction * info.spacing,
                               [[1, 1, 0.25], [0, 1, 0.5], [0, 0, 2]], atol=1e-15)
    assert info.spacing[1] == pytest.approx(np.sqrt(2))


def test_two_dimensional_padding(tmp_path):
    header = ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace dimension: 2\n"
              "space directions: (-1,0) (0,2)\nspace origin: (3,4)\n")
    _, info = load(write_nrrd(tmp_path / "p.nrrd", header, bytes(4)))
    np.testing.assert_array_equal(info.direction, np.diag([-1.0, 1.0, 1.0]))
    assert info.spacing == (1.0, 2.0, 1.0) and info.origin == (3.0, 4.0, 0.0)


# -- axes and components --------------------------------------------------------------------------


@pytest.mark.parametrize("kind,n", [("RGB-color", 3), ("rgb", 3), ("RGBA-color", 4),
                                    ("vector", 3), ("3-vector", 3), ("list", 5), ("point", 3),
                                    ("covariant-vector", 2), ("3D-symmetric-matrix", 6),
                                    ("quaternion", 4), ("HSV-color", 3), ("4-color", 4)])
def test_component_axis_first(tmp_path, kind, n):
    data = np.arange(5 * 4 * n, dtype=np.uint8)
    header = (f"type: uchar\ndimension: 3\nsizes: {n} 4 5\nkinds: {kind} domain domain\n"
              "encoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "c.nrrd", header, data.tobytes()))
    assert arr.shape == (5, 4, n) and info.channels == n
    np.testing.assert_array_equal(arr.ravel(), data)


@pytest.mark.parametrize("kind,n", [("RGB-color", 4), ("RGBA-color", 3), ("3-vector", 2),
                                    ("3D-symmetric-matrix", 7), ("quaternion", 3),
                                    ("3D-masked-symmetric-matrix", 6)])
def test_a_kind_must_fit_its_axis_size(tmp_path, kind, n):
    # As teem checks: a kind with a fixed number of components on an axis of another size.
    header = (f"type: uchar\ndimension: 3\nsizes: {n} 4 5\nkinds: {kind} domain domain\n"
              "encoding: raw\n")
    path = write_nrrd(tmp_path / "k.nrrd", header, bytes(5 * 4 * n))
    with pytest.raises(CorruptFileError, match="kinds") as err:
        load(path)
    assert "k.nrrd" in str(err.value) and kind in str(err.value)


@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_component_axis_anywhere_is_moved_last(tmp_path, position):
    sizes = [4, 5, 6]
    sizes.insert(position, 3)
    kinds = ["domain"] * 3
    kinds.insert(position, "vector")
    data = np.arange(np.prod(sizes), dtype="<u2")
    header = (f"type: ushort\ndimension: 4\nsizes: {' '.join(map(str, sizes))}\n"
              f"kinds: {' '.join(kinds)}\nendian: little\nencoding: gzip\n")
    arr, info = load(write_nrrd(tmp_path / "c.nrrd", header, gzip.compress(data.tobytes())))
    expected = np.moveaxis(data.reshape(sizes[::-1]), 3 - position, -1)
    assert arr.shape == (6, 5, 4, 3) and info.channels == 3
    np.testing.assert_array_equal(arr, expected)


def test_time_axis_not_last_and_components_in_the_middle(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=">i4")  # file axes: time=2, x=3, vector=4, y=5
    header = ("type: int\ndimension: 4\nsizes: 2 3 4 5\nkinds: time domain vector domain\n"
              "endian: big\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "tv.nrrd", header, data.tobytes()))
    assert info.shape == (2, 1, 5, 3) and info.channels == 4
    expected = data.reshape(5, 4, 3, 2).transpose(3, 0, 2, 1)[:, None]
    np.testing.assert_array_equal(arr, expected)


def test_complex_axis(tmp_path):
    arr = sample("complex64", (3, 4), seed=2)
    header = "type: float\ndimension: 3\nsizes: 2 4 3\nkinds: complex domain domain\n" \
             "endian: little\nencoding: raw\n"
    back, info = load(write_nrrd(tmp_path / "c.nrrd", header, arr.astype("<c8").tobytes()))
    assert back.dtype == np.complex64 and back.tobytes() == arr.tobytes()
    # complex last in the file: transposed into place
    planes = np.stack([arr.real, arr.imag]).astype(">f4")
    header = "type: float\ndimension: 3\nsizes: 4 3 2\nkinds: domain domain complex\n" \
             "endian: big\nencoding: raw\n"
    back, _ = load(write_nrrd(tmp_path / "last.nrrd", header, planes.tobytes()))
    assert back.tobytes() == arr.tobytes()
    refuse(write_nrrd(tmp_path / "three.nrrd", "type: float\ndimension: 3\nsizes: 3 2 2\n"
                      "kinds: complex domain domain\nendian: little\nencoding: raw\n", bytes(48)),
           CorruptFileError, "complex")
    refuse(write_nrrd(tmp_path / "int.nrrd", "type: short\ndimension: 3\nsizes: 2 2 2\n"
                      "kinds: complex domain domain\nendian: little\nencoding: raw\n", bytes(16)),
           UnsupportedFormatError, "complex")


def test_size_one_non_spatial_axes_vanish(tmp_path):
    header = ("type: double\ndimension: 4\nspace: right-anterior-superior\nsizes: 1 1 1 1\n"
              "space directions: (1.5,0,0) (0,1.5,0) (0,0,1) none\nendian: little\n"
              "encoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "simple4d.nrrd", header, np.float64([0.77]).tobytes()))
    assert info.shape == (1, 1, 1, 1)  # the undirected fourth axis is time (ITK's reading)
    header = ("type: uchar\ndimension: 5\nsizes: 1 2 2 2 3\nkinds: stub domain domain domain "
              "list\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "stub.nrrd", header, bytes(range(24))))
    assert info.shape == (2, 2, 2) and info.channels == 3
    np.testing.assert_array_equal(arr, np.arange(24).reshape(3, 2, 2, 2).transpose(1, 2, 3, 0))
    header = ("type: uchar\ndimension: 3\nsizes: 2 3 1\nkinds: domain domain domain\n"
              "space: LPS\nspace directions: (1,0,0) (0,1,0) none\nencoding: raw\n")
    arr, info = load(write_nrrd(tmp_path / "flat.nrrd", header, bytes(range(6))))
    assert info.shape == (3, 2) and info.ndim == 2


def test_two_d_plus_time(tmp_path):
    header = "type: uchar\ndimension: 3\nsizes: 2 3 4\nkinds: domain domain time\nencoding: raw\n"
    arr, info = load(write_nrrd(tmp_path / "t.nrrd", header, bytes(range(24))))
    assert info.shape == (4, 1, 3, 2) and info.ndim == 4
    np.testing.assert_array_equal(arr.ravel(), np.arange(24))


@pytest.mark.parametrize("header,match", [
    ("dimension: 4\nsizes: 2 2 2 2\nkinds: vector list domain domain\n", "non-spatial"),
    ("dimension: 4\nsizes: 2 2 2 2\nkinds: complex vector domain domain\n", "non-spatial"),
    ("dimension: 5\nsizes: 2 2 2 2 2\n", "spatial axes"),
    ("dimension: 5\nsizes: 2 2 2 2 2\nkinds: domain domain domain time time\n", "time"),
    ("dimension: 2\nsizes: 2 2\nkinds: vector time\n", "no spatial"),
    ("dimension: 3\nsizes: 2 2 2\nspace: LPS\nspace directions: (1,0,0) (0,1,0) none\n"
     "kinds: domain domain domain\n", "without a space direction"),
    ("dimension: 3\nsizes: 2 2 2\nspace: LPS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n"
     "kinds: vector domain domain\n", "kind"),
    ("dimension: 7\nsizes: 2 2 2 2 2 2 2\nkinds: domain domain domain domain domain domain "
     "domain\n", "spatial axes"),
])
def test_axis_layouts_mitk_cannot_hold(tmp_path, header, match):
    p = write_nrrd(tmp_path / "ax.nrrd", "type: uchar\nencoding: raw\n" + header, bytes(256))
    refuse(p, UnsupportedFormatError, match)


# -- data location --------------------------------------------------------------------------------

BASE = "type: short\ndimension: 3\nsizes: 4 3 2\nendian: big\n"
DATA = np.arange(24, dtype=">i2")


def expect_data(path, **options):
    np.testing.assert_array_equal(load(path, **options)[0].ravel(), np.arange(24))


def test_byte_and_line_skips(tmp_path):
    expect_data(write_nrrd(tmp_path / "bs.nrrd", BASE + "encoding: raw\nbyte skip: 5\n",
                           b"12345" + DATA.tobytes()))
    expect_data(write_nrrd(tmp_path / "m1.nrrd", BASE + "encoding: raw\nbyte skip: -1\n",
                           b"anything before" + DATA.tobytes()))
    expect_data(write_nrrd(tmp_path / "ls.nrrd", BASE + "encoding: raw\nline skip: 2\n",
                           b"a line\n\n" + DATA.tobytes()))
    # byte skip of a compressed stream counts decompressed bytes
    expect_data(write_nrrd(tmp_path / "gz.nrrd", BASE + "encoding: gzip\nbyte skip: 3\n",
                           gzip.compress(b"abc" + DATA.tobytes())))
    expect_data(write_nrrd(tmp_path / "gzl.nrrd", BASE + "encoding: gzip\nlineskip: 1\n",
                           b"text\n" + gzip.compress(DATA.tobytes())))
    expect_data(write_nrrd(tmp_path / "as.nrrd", "type: short\ndimension: 3\nsizes: 4 3 2\n"
                           "encoding: ascii\nline skip: 1\nbyte skip: 2\n",
                           b"skip me\nXX" + " ".join(map(str, range(24))).encode()))


@pytest.mark.parametrize("codec", ["gzip", "bzip2"])
def test_byte_skip_minus_one_of_a_compressed_stream(tmp_path, codec):
    # teem reads a .nii.gz this way: the data are the last bytes of the decompressed stream
    compress = gzip.compress if codec == "gzip" else bz2.compress
    (tmp_path / "img.nii.gz").write_bytes(compress(b"\1" * 352 + DATA.tobytes()))
    expect_data(write_nrrd(tmp_path / "n.nhdr", BASE + f"encoding: {codec}\nbyte skip: -1\n"
                           "data file: img.nii.gz\n"))
    (tmp_path / "short.gz").write_bytes(compress(DATA.tobytes()[:-2]))
    refuse(write_nrrd(tmp_path / "s.nhdr", BASE + f"encoding: {codec}\nbyte skip: -1\n"
                      "data file: short.gz\n"), CorruptFileError, "fewer", in_data=True)


def test_bad_skips(tmp_path):
    for header, data in [("encoding: raw\nbyte skip: -2\n", DATA.tobytes()),
                         ("encoding: raw\nbyte skip: 1\n", DATA.tobytes()),
                         ("encoding: raw\nline skip: 3\n", b"one\ntwo\n" + DATA.tobytes()),
                         ("encoding: raw\nline skip: -1\n", DATA.tobytes()),
                         ("encoding: raw\nbyte skip: x\n", DATA.tobytes()),
                         ("encoding: gzip\nbyte skip: 9\n", gzip.compress(DATA.tobytes())),
                         ("encoding: hex\nbyte skip: -1\n", DATA.tobytes().hex().encode())]:
        err = refuse(write_nrrd(tmp_path / "skip.nrrd", BASE + header, data), CorruptFileError,
                     in_data="gzip" in header)
        assert "skip" in str(err) or "truncated" in str(err) or "ends after" in str(err)


def test_detached_single_file(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "d.raw").write_bytes(DATA.tobytes() + b"trailing bytes are fine")
    expect_data(write_nrrd(tmp_path / "a.nhdr", BASE + "encoding: raw\ndata file: sub/d.raw\n"))
    expect_data(write_nrrd(tmp_path / "b.nhdr", BASE + "encoding: raw\ndatafile: ./sub/d.raw"))
    expect_data(write_nrrd(tmp_path / "c.nhdr", BASE + "encoding: raw\n"
                           "data file: sub/../sub/d.raw\n"))
    # a .nrrd may point at a data file too, and a .nhdr may carry attached data
    expect_data(write_nrrd(tmp_path / "d.nrrd", BASE + "encoding: raw\ndata file: sub/d.raw\n"))
    expect_data(write_nrrd(tmp_path / "e.nhdr", BASE + "encoding: raw\n", DATA.tobytes()))


def test_detached_list_skiplist_and_patterns(tmp_path):
    for k in range(2):
        (tmp_path / f"s{k:02d}.raw").write_bytes(DATA[k * 12:(k + 1) * 12].tobytes())
    for k in range(6):
        (tmp_path / f"row{k}.raw").write_bytes(DATA[k * 4:(k + 1) * 4].tobytes())
    (tmp_path / "pre0.raw").write_bytes(b"xx" + DATA[:12].tobytes())
    (tmp_path / "pre1.raw").write_bytes(b"yyy" + DATA[12:].tobytes())
    expect_data(write_nrrd(tmp_path / "l.nhdr", BASE + "encoding: raw\ndata file: LIST\n"
                           "s00.raw\n\ns01.raw\n"))
    expect_data(write_nrrd(tmp_path / "l1.nhdr", BASE + "encoding: raw\ndata file: LIST 1\n" +
                           "".join(f"row{k}.raw\n" for k in range(6))))
    expect_data(write_nrrd(tmp_path / "sl.nhdr", BASE + "encoding: raw\ndata file: SKIPLIST\n"
                           "2 pre0.raw\n3 pre1.raw\n"))
    expect_data(write_nrrd(tmp_path / "p.nhdr", BASE + "encoding: raw\n"
                           "data file: s%02d.raw 0 1 1\n"))
    expect_data(write_nrrd(tmp_path / "p1.nhdr", BASE + "encoding: raw\n"
                           "data file: row%d.raw 0 5 1 1\n"))
    # whole-dimension slabs: two files, each one slice of the last axis
    expect_data(write_nrrd(tmp_path / "slab.nhdr", BASE + "encoding: raw\n"
                           "data file: s%02d.raw 0 1 1 3\n"))
    # a negative step walks backwards
    (tmp_path / "r1.raw").write_bytes(DATA[:12].tobytes())
    (tmp_path / "r0.raw").write_bytes(DATA[12:].tobytes())
    expect_data(write_nrrd(tmp_path / "back.nhdr", BASE + "encoding: raw\n"
                           "data file: r%d.raw 1 0 -1\n"))
    # compressed pieces, each its own stream
    for k in range(2):
        (tmp_path / f"g{k}.raw.gz").write_bytes(gzip.compress(DATA[k * 12:(k + 1) * 12].tobytes()))
    expect_data(write_nrrd(tmp_path / "g.nhdr", BASE + "encoding: gzip\n"
                           "data file: g%d.raw.gz 0 1 1\n"))


@pytest.mark.parametrize("spec", ["LIST\ns00.raw\n", "LIST\n", "LIST 2\ns00.raw\n",
                                  "LIST 9\ns00.raw\n", "LIST x\ns00.raw\n",
                                  "s%02d.raw 0 2 1\n", "s%02d.raw 0 1\n", "s%02d.raw 0 1 0\n",
                                  "s%02d.raw 1 0 1\n", "s%02d.raw a b c\n",
                                  "SKIPLIST\ns00.raw\ns01.raw\n",
                                  "SKIPLIST\n-5 s00.raw\n1 s01.raw\n"])
def test_bad_data_file_lists(tmp_path, spec):
    for k in range(3):
        (tmp_path / f"s{k:02d}.raw").write_bytes(DATA[:12].tobytes())
    refuse(write_nrrd(tmp_path / "bad.nhdr", BASE + "encoding: raw\ndata file: " + spec),
           CorruptFileError, "data file")


def test_missing_data_files(tmp_path):
    p = write_nrrd(tmp_path / "x.nhdr", BASE + "encoding: raw\ndata file: gone.raw\n")
    with pytest.raises(FileNotFoundError, match="x.nhdr") as err:
        nrrd.read(str(p), Recorder())
    assert err.value.filename == str(tmp_path / "gone.raw")
    (tmp_path / "s0.raw").write_bytes(DATA[:12].tobytes())
    p = write_nrrd(tmp_path / "y.nhdr", BASE + "encoding: raw\ndata file: s%d.raw 0 1 1\n")
    with pytest.raises(FileNotFoundError, match="y.nhdr"):
        nrrd.read(str(p), Recorder())
    p = tmp_path / "z.nhdr"  # a header that ends without a blank line, and no data file
    p.write_bytes(("NRRD0004\n" + BASE + "encoding: raw\n").encode())
    refuse(p, CorruptFileError, "data file")
    (tmp_path / "dir.raw").mkdir()
    refuse(write_nrrd(tmp_path / "w.nhdr", BASE + "encoding: raw\ndata file: dir.raw\n"),
           CorruptFileError, "regular file")
    if hasattr(os, "mkfifo"):  # a FIFO would block the reader forever
        os.mkfifo(tmp_path / "pipe.raw")
        refuse(write_nrrd(tmp_path / "v.nhdr", BASE + "encoding: raw\ndata file: pipe.raw\n"),
               CorruptFileError, "regular file")


def test_escaping_data_paths_need_permission(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "data.raw").write_bytes(DATA.tobytes())
    for name in ("../data.raw", str(tmp_path / "data.raw"), "sub/../../data.raw"):
        p = write_nrrd(inner / "x.nhdr", BASE + f"encoding: raw\ndata file: {name}\n")
        refuse(p, CorruptFileError, "allow_external_data")
        expect_data(p, allow_external_data=True)
    p = write_nrrd(inner / "l.nhdr", BASE + "encoding: raw\ndata file: LIST\n../data.raw\n"
                   "../data.raw\n")
    refuse(p, CorruptFileError, "allow_external_data")
    p = write_nrrd(inner / "m.nhdr", BASE + "encoding: raw\ndata file: ../missing.raw\n")
    refuse(p, CorruptFileError, "allow_external_data")  # refused before looking for it
    refuse(write_nrrd(inner / "s.nhdr", BASE + "encoding: raw\ndata file: -\n"),
           UnsupportedFormatError, "standard input")


# -- hostile files --------------------------------------------------------------------------------


@pytest.mark.parametrize("header,exc", [
    ("type: float\ndimension: 3\nsizes: 100000 100000 100000\nendian: little\nencoding: raw\n",
     CorruptFileError),
    ("type: float\ndimension: 3\nsizes: 10 -10 10\nendian: little\nencoding: raw\n",
     CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 10 0\nendian: little\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 3\nsizes: 10 10\nendian: little\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 3\nsizes: 9999999999999999999999 2 2\nendian: little\n"
     "encoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 2 2.5\nendian: little\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 0\nsizes: \nendian: little\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 17\nsizes: 1\nendian: little\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: two\nsizes: 2 2\nendian: little\nencoding: raw\n",
     CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 2 2\nendian: little\nencoding: zstd\n",
     UnsupportedFormatError),
    ("type: float\ndimension: 2\nsizes: 2 2\nendian: little\nencoding: zrl\n",
     UnsupportedFormatError),
    ("type: quaternion\ndimension: 2\nsizes: 2 2\nencoding: raw\n", UnsupportedFormatError),
    ("type: block\nblock size: 4\ndimension: 2\nsizes: 2 2\nencoding: raw\n",
     UnsupportedFormatError),
    ("type: char\ndimension: 2\nsizes: 2 2\nencoding: raw\n", UnsupportedFormatError),
    ("type: float\ntype: float\ndimension: 2\nsizes: 2 2\nendian: little\nencoding: raw\n",
     CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 2 2\nendian: little\nencoding: raw\nbyteskip: 0\n"
     "byte skip: 0\n", CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 2 2\nencoding: raw\n", CorruptFileError),
    ("type: float\ndimension: 2\nsizes: 2 2\nendian: middle\nencoding: raw\n", CorruptFileError),
    ("dimension: 2\nsizes: 2 2\nencoding: raw\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nencoding: raw\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: RAS\n"
     "space directions: (1,0,0) (0,nan,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: RAS\n"
     "space directions: (1,0,0) (0,inf,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (2,0,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (0,0,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (0,1,0)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0) (0,1,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: [1,0,0] (0,1,0) (0,0,1)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (0,1,0) (0,0,1\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (0,1,0) (0,0,1)\nspace origin: (1,2)\n", CorruptFileError),
    ("type: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\nspace: LPS\n"
     "space directions: (1,0,0) (0,1,0) (0,0,1)\nspace origin: (1,nan,3)\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace: LPS\nspace dimension: 3\n",
     CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace: mars\n",
     UnsupportedFormatError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace dimension: 5\n",
     UnsupportedFormatError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace directions: (1,0) (0,1)\n",
     CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace origin: (1,0)\n",
     CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nkinds: domain\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nkinds: domain sideways\n",
     CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspacings: 1 x\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace: LPS\n"
     'space units: "mm" "mm"\n', CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace: LPS\n"
     "measurement frame: (1,0,0) (0,1,0)\n", CorruptFileError),
    ("type: uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\nmeasurement frame: (1,0) (0,1)\n",
     CorruptFileError),
    ("this is not a header\n", CorruptFileError),
    ("type:uchar\ndimension: 2\nsizes: 2 2\nencoding: raw\n", CorruptFileError),
    ("type: uchar\n  \ndimension: 2\nsizes: 2 2\nencoding: raw\n", CorruptFileError),
])
def test_hostile_headers(tmp_path, header, exc):
    p = tmp_path / "h.nrrd"
    p.write_bytes(b"NRRD0004\n" + header.encode() + b"\n" + bytes(64))
    refuse(p, exc)


def test_messages_name_file_and_field(tmp_path):
    err = refuse(write_nrrd(tmp_path / "f.nrrd", "type: uchar\ndimension: 2\nsizes: 2 2\n"
                            "encoding: raw\nkinds: domain\n", bytes(4)), CorruptFileError)
    assert "'kinds'" in str(err) and "expected 2" in str(err)
    err = refuse(write_nrrd(tmp_path / "e.nrrd", "type: uchar\ndimension: 2\nsizes: 2 2\n"
                            "encoding: lzma\n", bytes(4)), UnsupportedFormatError)
    assert "'encoding'" in str(err) and "lzma" in str(err)
    err = refuse(write_nrrd(tmp_path / "t.nrrd", "type: uchar\ndimension: 2\nsizes: 4 4\n"
                            "encoding: raw\n", bytes(10)), CorruptFileError)
    assert "16 bytes" in str(err) and "10 present" in str(err)


def test_huge_declarations_fail_before_allocating(tmp_path):
    big = "type: double\ndimension: 3\nsizes: 4096 4096 4096\nendian: little\n"
    refuse(write_nrrd(tmp_path / "raw.nrrd", big + "encoding: raw\n", bytes(1000)),
           CorruptFileError, "truncated")
    refuse(write_nrrd(tmp_path / "gz.nrrd", big + "encoding: gzip\n", gzip.compress(bytes(1000))),
           CorruptFileError, "1032")
    refuse(write_nrrd(tmp_path / "bz.nrrd", big + "encoding: bzip2\n", bz2.compress(bytes(1000))),
           CorruptFileError, "bzip2")
    refuse(write_nrrd(tmp_path / "gzm1.nrrd", big + "encoding: gzip\nbyte skip: -1\n",
                      gzip.compress(bytes(1000))), CorruptFileError, "1032")
    refuse(write_nrrd(tmp_path / "txt.nrrd", big + "encoding: ascii\n", b"1 2 3"),
           CorruptFileError, "ascii")
    refuse(write_nrrd(tmp_path / "hex.nrrd", big + "encoding: hex\n", b"00ff"),
           CorruptFileError, "hex")
    p = write_nrrd(tmp_path / "list.nhdr", big + "encoding: raw\n"
                   "data file: d%d.raw 0 999999999 1 2\n")
    refuse(p, UnsupportedFormatError, "files")


def test_compressed_streams_of_the_wrong_length(tmp_path):
    header = "type: uchar\ndimension: 2\nsizes: 4 4\n"
    # Longer is fine: what follows the declared payload is ignored (SPEC 6.2), as teem does.
    arr, _ = load(write_nrrd(tmp_path / "long.nrrd", header + "encoding: gzip\n",
                             gzip.compress(bytes(range(17)))))
    assert arr.ravel().tolist() == list(range(16))
    refuse(write_nrrd(tmp_path / "short.nrrd", header + "encoding: gzip\n",
                      gzip.compress(bytes(15))), CorruptFileError, in_data=True)
    refuse(write_nrrd(tmp_path / "cut.nrrd", header + "encoding: bzip2\n",
                      bz2.compress(bytes(16))[:-5]), CorruptFileError, in_data=True)
    refuse(write_nrrd(tmp_path / "junk.nrrd", header + "encoding: gzip\n",
                      b"this is not gzip data at all"), CorruptFileError, "gzip", in_data=True)
    refuse(write_nrrd(tmp_path / "bad.nrrd", header + "encoding: bzip2\n",
                      b"BZh9 certainly not bzip2"), CorruptFileError, "bzip2", in_data=True)
    refuse(write_nrrd(tmp_path / "m1.nrrd", header + "encoding: gzip\nbyte skip: -1\n",
                      gzip.compress(bytes(100))[:-9]), CorruptFileError, in_data=True)
    refuse(write_nrrd(tmp_path / "hx.nrrd", header + "encoding: hex\n", b"zz" * 16),
           CorruptFileError, "hex", in_data=True)
    refuse(write_nrrd(tmp_path / "hs.nrrd", header + "encoding: hex\n", b"0 0 " * 8),
           CorruptFileError, "hex", in_data=True)
    # trailing bytes after raw data are fine (real files carry them)
    arr, _ = load(write_nrrd(tmp_path / "trail.nrrd", header + "encoding: raw\n", bytes(40)))
    assert arr.shape == (4, 4)


def test_header_limits_and_garbage(tmp_path):
    refuse(write_nrrd(tmp_path / "nul.nrrd", "type: uchar\0\ndimension: 2\nsizes: 2 2\n"
                      "encoding: raw\n", bytes(4)), CorruptFileError, "NUL")
    p = tmp_path / "long.nrrd"
    p.write_bytes(b"NRRD0004\n" + b"x" * (5 << 20))
    refuse(p, CorruptFileError, "longer")
    p = tmp_path / "binary.nrrd"
    p.write_bytes(b"NRRD0004\n" + bytes(range(256)) * 4)
    refuse(p, CorruptFileError)
    p = tmp_path / "latin.nrrd"
    p.write_bytes(b"NRRD0004\ntype: uchar\ndimension: 2\nsizes: 1 1\nencoding: raw\n"
                  b"name:=M\xfcller\n\n\x07")
    assert load(p)[1].properties["name"] == "M\u00fcller"


def test_truncation_at_every_offset(tmp_path):
    good = tmp_path / "good.nrrd"
    save(good, sample("int16", (3, 4, 5)), spacing=(0.5, 0.75, 1.25), origin=(1.0, 2.0, 3.0),
         direction=SHEARED, properties={"note": "a value"})
    data = good.read_bytes()
    header_end = data.index(b"\n\n") + 2
    cuts = list(range(0, header_end + 1)) + [header_end + 1, len(data) // 2, len(data) - 1]
    for cut in cuts:
        p = tmp_path / f"cut{cut}.nrrd"
        p.write_bytes(data[:cut])
        try:
            arr, info = load(p)
        except BAD as exc:
            assert p.name in str(exc)
        else:  # a cut can only leave a valid file if the whole header and data survived
            raise AssertionError(f"cut at {cut} of {len(data)} read as {info}")
        p.unlink()


def test_random_corruption_never_leaks_other_errors(tmp_path):
    good = tmp_path / "good.nrrd"
    save(good, sample("float32", (2, 3, 4, 2)), channels=2, compression="gzip",
         spacing=(0.5, 0.75, 1.25), direction=SHEARED, properties={"k": "v"})
    data = bytearray(good.read_bytes())
    header_end = data.index(b"\n\n") + 2
    rng = random.Random(1234)
    alphabet = b"0123456789 -.,()\n:=#abcdefnoneNANinf\xff\x00"
    for trial in range(400):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(header_end if trial % 4 else len(mutated))
            action = rng.randrange(3)
            if action == 0:
                mutated[pos] = rng.choice(alphabet)
            elif action == 1:
                del mutated[pos]
            else:
                mutated.insert(pos, rng.choice(alphabet))
        p = tmp_path / "m.nrrd"
        p.write_bytes(bytes(mutated))
        try:
            load(p)
        except BAD as exc:
            assert "m.nrrd" in str(exc)


# -- atomic save ----------------------------------------------------------------------------------


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.nrrd"
    old = sample("uint8", (3, 3))
    save(path, old)
    before = path.read_bytes()

    def boom(f, data):
        f.write(bytes(data[:5]))
        raise OSError("disk full")

    monkeypatch.setattr(_streams, "write_from", boom)
    with pytest.raises(OSError, match="disk full"):
        save(path, sample("uint8", (4, 4), seed=9))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["x.nrrd"]


def test_failed_detached_save_keeps_the_old_pair(tmp_path, monkeypatch):
    path = tmp_path / "x.nhdr"
    old = sample("int16", (3, 3, 3))
    save(path, old)
    before = {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)}

    def boom(f, data, codec, level=1, **options):
        raise OSError("no space left")

    monkeypatch.setattr(_streams, "compress_from", boom)
    with pytest.raises(OSError, match="no space"):
        save(path, sample("int16", (3, 3, 3), seed=4), compression="gzip")
    assert {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)} == before
    assert np.array_equal(load(path)[0], old)


def test_save_overwrites_and_into_missing_directory(tmp_path):
    path = tmp_path / "x.nrrd"
    save(path, np.ones((2, 2), np.uint8))
    save(path, np.full((3, 3), 7, np.uint8))
    assert load(path)[0].tolist() == [[7] * 3] * 3
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "missing" / "x.nrrd", np.ones((2, 2), np.uint8))
    with pytest.raises(FileNotFoundError):
        save(tmp_path / "missing" / "x.nhdr", np.ones((2, 2), np.uint8))
    assert no_temp_files(tmp_path)


def test_shape_mismatch_and_bad_geometry_are_refused(tmp_path):
    arr = np.zeros((2, 3), np.uint8)
    with pytest.raises(ArgumentError, match="shape"):
        nrrd.write(str(tmp_path / "x.nrrd"), arr, ImageInfo(dtype=arr.dtype, shape=(3, 2)))
    with pytest.raises(ArgumentError, match="finite"):
        nrrd.write(str(tmp_path / "x.nrrd"), arr,
                   ImageInfo(dtype=arr.dtype, shape=(2, 3), spacing=(1.0, np.nan, 1.0)))
    assert os.listdir(tmp_path) == []


# -- other software -------------------------------------------------------------------------------


def _lps_axes(header):
    space = header.get("space", "left-posterior-superior").lower()
    flip = {"right-anterior-superior": [-1, -1, 1], "left-anterior-superior": [1, -1, 1]}.get(
        space, [1, 1, 1])
    dirs = [d for d in header["space directions"]
            if d is not None and not np.all(np.isnan(np.asarray(d, dtype=float)))]
    return np.diag(flip) @ np.array(dirs, dtype=float).T, np.multiply(flip, header["space origin"])


@pytest.mark.parametrize("encoding", ["raw", "gzip", "bzip2", "ascii"])
@pytest.mark.parametrize("detached", [False, True])
def test_pynrrd_files_read_bit_exact(tmp_path, encoding, detached):
    pynrrd = pytest.importorskip("nrrd")
    data = sample("float64" if encoding == "ascii" else "int32", (4, 5, 6), seed=11)
    if encoding == "ascii":
        data = np.round(data, 3)
    header = {"space": "right-anterior-superior", "encoding": encoding,
              "space directions": [[0.5, 0.1, 0], [0, 0.75, 0], [0, 0, 1.25]],
              "space origin": [1.0, 2.0, 3.0], "kinds": ["domain"] * 3, "endian": "big",
              "space units": ["mm", "mm", "mm"], "measurement frame": np.eye(3).tolist()}
    path = tmp_path / ("p.nhdr" if detached else "p.nrrd")
    pynrrd.write(str(path), data, header, index_order="C", detached_header=detached,
                 custom_field_map={"answer": "int"}, compression_level=5)
    arr, info = load(path)
    assert arr.dtype == data.dtype and np.array_equal(arr, data, equal_nan=True)
    axes, origin = _lps_axes(pynrrd.read_header(str(path)))
    np.testing.assert_allclose(info.direction * info.spacing, axes, atol=1e-12)
    np.testing.assert_allclose(info.origin, origin, atol=1e-12)
    assert info.properties["nrrd.measurement frame"] == \
        "(-1.0,0.0,0.0) (0.0,-1.0,0.0) (0.0,0.0,1.0)"


@pytest.mark.parametrize("rgb_first", [True, False])
def test_pynrrd_vector_and_custom_fields(tmp_path, rgb_first):
    pynrrd = pytest.importorskip("nrrd")
    data = sample("uint8", (3, 4, 5, 3), seed=2)  # C order; pynrrd's header lists fastest first
    kinds = ["domain", "domain", "domain"]
    kinds.insert(0 if rgb_first else 3, "RGB-color")
    dirs = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    dirs.insert(0 if rgb_first else 3, [np.nan] * 3)
    header = {"space": "left-posterior-superior", "kinds": kinds, "space directions": dirs,
              "space origin": [0, 0, 0], "encoding": "gzip", "Study ID": "abc"}
    pynrrd.write(str(tmp_path / "rgb.nrrd"), data, header, index_order="C")
    arr, info = load(tmp_path / "rgb.nrrd")
    assert info.channels == 3 and arr.shape == ((3, 4, 5, 3) if rgb_first else (4, 5, 3, 3))
    np.testing.assert_array_equal(arr, data if rgb_first else np.moveaxis(data, 0, -1))
    assert info.properties["Study ID"] == "abc"


@pytest.mark.parametrize("ext,compression", [(".nrrd", "gzip"), (".nhdr", "bzip2")])
@pytest.mark.parametrize("name,channels,ndim", [("int16", 1, 3), ("float32", 3, 3),
                                                ("uint8", 3, 2), ("float64", 1, 4),
                                                ("uint8", 4, 4), ("complex64", 1, 3)])
def test_our_files_read_by_pynrrd(tmp_path, ext, compression, name, channels, ndim):
    pynrrd = pytest.importorskip("nrrd")
    shape = {2: (5, 6), 3: (4, 5, 6), 4: (2, 4, 5, 6)}[ndim] + ((channels,) if channels > 1 else ())
    arr = sample(name, shape, seed=4)
    geometry = {} if ndim == 2 else dict(spacing=(0.5, 0.75, 1.25), origin=(1.0, -2.0, 3.5),
                                         direction=SHEARED)
    save(tmp_path / f"x{ext}", arr, channels, properties={"study": "pynrrd"},
         compression=compression, **geometry)
    data, header = pynrrd.read(str(tmp_path / f"x{ext}"), index_order="C")
    if name.startswith("complex"):
        data = data[..., 0] + 1j * data[..., 1]
    assert data.tobytes() == arr.tobytes()
    assert header["study"] == "pynrrd"
    dirs = [d for d in header["space directions"] if not np.all(np.isnan(d))]
    axes = np.array(dirs, dtype=float)[:3, :3].T
    if ndim > 2:
        np.testing.assert_allclose(axes, SHEARED * [0.5, 0.75, 1.25], atol=1e-12)
        np.testing.assert_allclose(header["space origin"][:3], (1.0, -2.0, 3.5))


def _sitk_image(sitk, arr, channels, spacing, origin, direction):
    img = sitk.GetImageFromArray(arr, isVector=channels > 1)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(np.asarray(direction, dtype=float).ravel().tolist())
    return img


@pytest.mark.parametrize("name,channels,compress", [("int16", 1, False), ("uint8", 3, True),
                                                    ("float32", 2, False), ("uint64", 1, True),
                                                    ("complex64", 1, False)])
def test_simpleitk_files_read_bit_exact(tmp_path, name, channels, compress):
    sitk = pytest.importorskip("SimpleITK")
    shape = (4, 5, 6) + ((channels,) if channels > 1 else ())
    arr = sample(name, shape, seed=8)
    img = _sitk_image(sitk, arr, channels, (0.5, 0.75, 1.25), (1.0, -2.0, 3.5), SHEARED)
    sitk.WriteImage(img, str(tmp_path / "s.nrrd"), compress)
    back, info = load(tmp_path / "s.nrrd")
    assert back.tobytes() == arr.tobytes() and info.channels == channels
    np.testing.assert_allclose(info.spacing, (0.5, 0.75, 1.25), rtol=1e-6)
    np.testing.assert_allclose(info.origin, (1.0, -2.0, 3.5), atol=1e-6)
    np.testing.assert_allclose(info.direction, np.array(img.GetDirection()).reshape(3, 3),
                               atol=1e-6)


def test_simpleitk_4d_and_2d_read_bit_exact(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    arr = sample("float32", (3, 4, 5, 6), seed=1)
    img = sitk.JoinSeries([sitk.GetImageFromArray(a) for a in arr], 10.0, 0.5)
    sitk.WriteImage(img, str(tmp_path / "t.nrrd"))
    back, info = load(tmp_path / "t.nrrd")
    assert info.ndim == 4 and back.tobytes() == arr.tobytes()
    assert (info.time_origin, info.time_spacing) == (10.0, 0.5)
    vec = sample("float32", (2, 3, 4, 5, 3), seed=2)
    img = sitk.JoinSeries([sitk.GetImageFromArray(a, isVector=True) for a in vec])
    sitk.WriteImage(img, str(tmp_path / "v.nrrd"))
    back, info = load(tmp_path / "v.nrrd")
    assert info.shape == (2, 3, 4, 5) and info.channels == 3
    assert back.tobytes() == vec.tobytes()
    flat = sample("uint16", (5, 6), seed=3)
    img2 = sitk.GetImageFromArray(flat)
    img2.SetSpacing((0.25, 4.0))
    img2.SetOrigin((-3.0, 7.0))
    sitk.WriteImage(img2, str(tmp_path / "f.nrrd"))
    back, info = load(tmp_path / "f.nrrd")
    assert np.array_equal(back, flat) and info.spacing == (0.25, 4.0, 1.0)
    assert info.origin == (-3.0, 7.0, 0.0)


@pytest.mark.parametrize("ext,compression", [(".nrrd", None), (".nrrd", "gzip"), (".nhdr", None),
                                             (".nhdr", "gzip")])
@pytest.mark.parametrize("name,channels,ndim", [("int16", 1, 3), ("uint8", 3, 3),
                                                ("float32", 1, 4), ("float64", 2, 4),
                                                ("int32", 1, 2), ("complex128", 1, 3)])
def test_our_files_read_by_simpleitk(tmp_path, ext, compression, name, channels, ndim):
    sitk = pytest.importorskip("SimpleITK")
    shape = {2: (5, 6), 3: (4, 5, 6), 4: (2, 4, 5, 6)}[ndim] + ((channels,) if channels > 1 else ())
    arr = sample(name, shape, seed=6)
    geometry = dict(spacing=(0.5, 0.75, 1.25), origin=(1.0, -2.0, 3.5), direction=SHEARED)
    if ndim == 2:
        geometry = dict(spacing=(0.5, 0.75, 1.0), origin=(1.0, -2.0, 0.0))
    save(tmp_path / f"x{ext}", arr, channels, time_origin=4.0, time_spacing=1.5,
         compression=compression, **geometry)
    img = sitk.ReadImage(str(tmp_path / f"x{ext}"))
    assert img.GetDimension() == ndim and img.GetNumberOfComponentsPerPixel() == channels
    assert sitk.GetArrayViewFromImage(img).tobytes() == arr.tobytes()
    n = min(ndim, 3)
    np.testing.assert_allclose(img.GetSpacing()[:n], geometry["spacing"][:n], rtol=1e-12)
    np.testing.assert_allclose(img.GetOrigin()[:n], geometry["origin"][:n], atol=1e-12)
    if ndim >= 3:
        d = np.array(img.GetDirection()).reshape(ndim, ndim)[:3, :3]
        np.testing.assert_allclose(d, SHEARED, atol=1e-12)
    if ndim == 4:
        assert img.GetSpacing()[3] == 1.5 and img.GetOrigin()[3] == 4.0


SLICER_FILES = ["CTChest4.nrrd", "Segmentation.seg.nrrd", "SegmentationOverlapping.seg.nrrd"]


@pytest.mark.parametrize("name", SLICER_FILES)
def test_real_slicer_files(tmp_path, name):
    pynrrd = pytest.importorskip("nrrd")
    slicerio = pytest.importorskip("slicerio")
    path = os.path.join(os.path.dirname(slicerio.__file__), "data", name)
    data, header = pynrrd.read(path, index_order="F")
    arr, info = load(path)
    # pynrrd's Fortran order lists the file's axes fastest first; ours is the reverse, with a
    # leading (fastest) component axis last, which is exactly the transpose
    np.testing.assert_array_equal(arr, data.T)
    if header["kinds"][0] == "list":  # SegmentationOverlapping: one layer per component
        assert info.channels == header["sizes"][0] == 2
        assert info.properties["nrrd.kinds"] == "list domain domain domain"
    axes, origin = _lps_axes(header)
    np.testing.assert_allclose(info.direction * info.spacing, axes, atol=1e-9)
    np.testing.assert_allclose(info.origin, origin, atol=1e-9)
    plain = {k: v for k, v in info.properties.items() if not k.startswith("nrrd.")}
    if name.endswith(".seg.nrrd"):
        assert any(k.startswith("Segment0_") for k in plain)
    # back out through our writer: the same image for us and for pynrrd, kinds and metadata kept
    nrrd.write(str(tmp_path / "out.nrrd"), arr, info, compression="gzip")
    again, info2 = load(tmp_path / "out.nrrd")
    assert np.array_equal(again, arr) and info2.properties == info.properties
    np.testing.assert_allclose(info2.direction * info2.spacing, axes, atol=1e-9)
    d2, h2 = pynrrd.read(str(tmp_path / "out.nrrd"), index_order="F")
    np.testing.assert_array_equal(d2, data)
    assert h2["kinds"] == header["kinds"]
    assert {k: v for k, v in h2.items() if k.startswith("Segment")} == \
        {k: v for k, v in header.items() if k.startswith("Segment")}


# -- hostile and unusual input found in review -----------------------------------------------------


def test_ascii_values_of_any_length_parse_in_proportional_memory(tmp_path):
    # One value written with 200,000 leading zeros: a fixed-width array of every token would
    # take count x longest token (37 GB here).
    n = 200_000
    body = ("0" * n + " " + "1 " * (n - 1) + "\n").encode()
    path = write_nrrd(tmp_path / "a.nrrd", f"type: uchar\ndimension: 2\nsizes: {n} 1\n"
                      "encoding: ascii\n", body)
    arr, _ = load(path)
    assert arr[0, 0] == 0 and np.all(arr[0, 1:] == 1)
    floats = ("0." + "0" * 100_000 + "5 " + "2.5 " * 3).encode()
    path = write_nrrd(tmp_path / "f.nrrd", "type: double\ndimension: 1\nsizes: 4\n"
                      "encoding: ascii\n", floats)
    np.testing.assert_array_equal(load(path)[0].ravel(), [0.0, 2.5, 2.5, 2.5])
    for bad in ("1" * 100 + " 1 1 1", "9" * 20 + " 1 1 1", "0x" + "0" * 99 + " 1 1 1"):
        path = write_nrrd(tmp_path / "b.nrrd", "type: int64\ndimension: 1\nsizes: 4\n"
                          "encoding: ascii\n", bad.encode())
        refuse(path, in_data=True, match="not a int64")


def test_a_pattern_cannot_pad_beyond_a_file_name(tmp_path):
    for width in ("300000000", "99999999999999999999", "9" * 5000):  # int() refuses 4300+ digits
        path = write_nrrd(tmp_path / "p.nhdr", f"type: uchar\ndimension: 3\nsizes: 2 2 3\n"
                          f"encoding: raw\ndata file: s%{width}d.raw 1 3 1\n")
        refuse(path, match="data file")


@pytest.mark.parametrize("encoding", ["ascii", "hex"])
def test_a_skiplist_skip_of_minus_one_needs_raw_or_compressed_data(tmp_path, encoding):
    (tmp_path / "s1.txt").write_text("1 2 3 4")
    path = write_nrrd(tmp_path / "s.nhdr", f"type: uchar\ndimension: 2\nsizes: 2 2\n"
                      f"encoding: {encoding}\ndata file: SKIPLIST\n-1 s1.txt\n")
    refuse(path, match="SKIPLIST")


def test_byte_skip_minus_one_reads_a_bounded_prefix(tmp_path, monkeypatch):
    # The prefix before the last bytes is not declared: a tiny bzip2 stream of zeros can hold
    # gigabytes, so it is counted only up to max(data size, the limit).
    monkeypatch.setattr(nrrd._data, "MAX_UNDECLARED_PREFIX", 1 << 20)
    for prefix, ok in ((1 << 20, True), ((1 << 20) + 1, False)):
        stream = bz2.compress(bytes(prefix) + b"\x07")
        path = write_nrrd(tmp_path / "z.nrrd", "type: uchar\ndimension: 2\nsizes: 1 1\n"
                          "encoding: bzip2\nbyte skip: -1\n", stream)
        if ok:
            assert load(path)[0].ravel().tolist() == [7]
        else:
            refuse(path, in_data=True, match="byte skip")


def test_a_nul_cannot_be_written_into_a_header(tmp_path):
    arr = np.zeros((2, 3), np.uint8)
    for props in ({"note": "a\0b"}, {"a\0b": "note"}, {"nrrd.content": "x\0y"}):
        with pytest.raises(UnsupportedFormatError, match="NUL"):
            save(tmp_path / "n.nrrd", arr, properties=props)
    assert os.listdir(tmp_path) == []


def test_names_with_a_colon_are_not_drive_paths(tmp_path):
    arr = sample("uint8", (3, 2))
    save(tmp_path / "c:scan.nhdr", arr)
    np.testing.assert_array_equal(load(tmp_path / "c:scan.nhdr")[0], arr)
    # A real Windows drive path is absolute wherever the file is read.
    path = write_nrrd(tmp_path / "w.nhdr", "type: uchar\ndimension: 2\nsizes: 2 3\n"
                      "encoding: raw\ndata file: C:\\scan.raw\n")
    refuse(path, match="outside")


def test_known_space_units_are_not_written_over_mm_geometry(tmp_path):
    arr = np.zeros((2, 3, 4), np.uint8)
    for units, kept in (('"cm" "cm" "cm"', False), ('"cm" "furlong" "cm"', True)):
        save(tmp_path / "u.nrrd", arr, spacing=(1.0, 2.0, 3.0), origin=(10.0, 20.0, 30.0),
             properties={"nrrd.space units": units})
        _, info = load(tmp_path / "u.nrrd")
        assert ("space units" in fields_of(tmp_path / "u.nrrd")) == kept
        # Known units would have scaled the mm geometry on reading; unknown ones are used as
        # they are (and kept as the property), as the reader does.
        np.testing.assert_allclose(info.spacing, (1.0, 2.0, 3.0))
        np.testing.assert_allclose(info.origin, (10.0, 20.0, 30.0))


def test_huge_values_load_without_warnings(tmp_path, recwarn):
    # Nothing is printed: a float beyond float32 in ascii data is inf (as strtof gives it), and
    # direction vectors near the float maximum still have a finite length.
    path = write_nrrd(tmp_path / "a.nrrd", "type: float\ndimension: 2\nsizes: 2 1\n"
                      "encoding: ascii\n", b"1e39 1")
    np.testing.assert_array_equal(load(path)[0].ravel(), [np.inf, 1.0])
    path = write_nrrd(tmp_path / "d.nrrd", "type: uchar\ndimension: 3\nsizes: 1 1 1\n"
                      "space: left-posterior-superior\nspace directions: (1e200,0,0) "
                      "(0,1e200,0) (0,0,1e200)\nencoding: raw\n", b"\0")
    _, info = load(path)
    np.testing.assert_allclose(info.spacing, (1e200,) * 3)
    assert [str(w.message) for w in recwarn] == []


def test_an_origin_beyond_the_float_range_after_unit_conversion_is_refused_silently(tmp_path):
    # 1e308 m is 1e311 mm: refused, and without a RuntimeWarning first (SPEC 2: no warnings;
    # pytest turns warnings into errors here).
    path = write_nrrd(tmp_path / "far.nrrd", 'type: uchar\ndimension: 3\nsizes: 1 1 1\nspace: LPS\n'
                      'space units: "m" "m" "m"\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n'
                      "space origin: (1e308,0,0)\nencoding: raw\n", b"\x01")
    refuse(path, CorruptFileError, "not finite")
