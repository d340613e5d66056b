"""`facet dicomize` and `facet dump` as a user runs them, checked with third-party tools."""
import json
import re
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames

from conftest import TESTDATA, run

# Every dciodvfy warning Facet's objects may carry; each is explained in ConformanceStatement.md.
ALLOWED_WARNINGS = [
    r"StudyID\(0020,0010\)> - Missing attribute or value that would be needed to build DICOMDIR",
    r"PatientID\(0010,0020\)> - Missing attribute or value that would be needed to build DICOMDIR",
    r"CodingSchemeDesignator\(0008,0102\)(\[1\])?> - Unrecognized defined term = <99FACET>",
    r"AnatomicRegionSequence\(0008,2218\).*Attribute is not present in standard DICOM IOD",
    r"BodyPartExamined\(0018,0015\)> - Attribute is not present in standard DICOM IOD",
    r"\(0009,1001,\"FACET 1.0\"\)> - Unrecognized tag - assuming explicit value representation OK",
]

GOOD_PHOTOS = ["phone-gps.jpg", "rotated-exif6.jpg", "ycbcr-422.jpg", "ycbcr-444.jpg", "progressive.jpg", "gray.jpg",
               "rgb.png", "gray.png", "palette.png", "alpha.png", "gray16.png"]


def dicomize(facet, out, *inputs, args=()):
    result = run(facet, "dicomize", *inputs, "--out", out, *args)
    written = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    return result, written


def by_class(paths):
    found = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        found.setdefault(ds.SOPClassUID, []).append((path, ds))
    return found


def scan_data(jpeg: bytes) -> bytes:
    """Everything from the first SOS marker through EOI: the entropy-coded data and the tables between scans."""
    offset = 2
    while offset < len(jpeg):
        assert jpeg[offset] == 0xFF
        marker = jpeg[offset + 1]
        if marker == 0xDA:
            end = jpeg.rfind(b"\xff\xd9") + 2
            return jpeg[offset:end]
        length = struct.unpack(">H", jpeg[offset + 2:offset + 4])[0]
        offset += 2 + length
    raise AssertionError("no SOS")


def app_segments(jpeg: bytes):
    offset, found = 2, []
    while offset < len(jpeg) and jpeg[offset + 1] != 0xDA:
        marker = jpeg[offset + 1]
        length = struct.unpack(">H", jpeg[offset + 2:offset + 4])[0]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            found.append((marker, jpeg[offset + 4:offset + 4 + min(length - 2, 12)]))
        offset += 2 + length
    return found


@pytest.fixture(scope="module")
def clinic_set(facet, tmp_path_factory):
    """The issue's 'done when' set: a phone JPEG with GPS, a PNG, an OBJ with MTL and texture, a binary STL."""
    out = tmp_path_factory.mktemp("clinic")
    result, written = dicomize(
        facet, out, TESTDATA / "photos/phone-gps.jpg", TESTDATA / "photos/rgb.png", TESTDATA / "meshes/face/face.obj",
        TESTDATA / "meshes/cube-binary.stl",
        args=("--patient-id", "P001", "--patient-name", "Müller^Jürgen", "--region", "face", "--view", "frontal",
              "--timing", "before"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return written


def test_clinic_set_writes_one_object_per_file(clinic_set):
    classes = by_class(clinic_set)
    assert len(clinic_set) == 6
    assert len(classes["1.2.840.10008.5.1.4.1.1.77.1.4"]) == 3  # photo, PNG, texture
    for uid in ("1.2.840.10008.5.1.4.1.1.104.3", "1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.5"):
        assert len(classes[uid]) == 1
    for path in clinic_set:
        assert re.fullmatch(r"[0-9.]+\.dcm", path.name), "file names carry the SOP Instance UID only"


def dciodvfy_report(dciodvfy, path):
    result = run(dciodvfy, "-new", path)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if line.startswith("Warning")]
    return errors, warnings


def test_every_object_has_zero_dciodvfy_errors_and_only_documented_warnings(facet, dciodvfy, tmp_path):
    inputs = [TESTDATA / "photos" / name for name in GOOD_PHOTOS]
    inputs += [TESTDATA / "meshes/face/face.obj", TESTDATA / "meshes/cube-binary.stl"]
    result, written = dicomize(facet, tmp_path, *inputs,
                               args=("--region", "face", "--view", "oblique-left", "--timing", "after",
                                     "--laterality", "B", "--patient-name", "Müller^Jürgen"))
    assert result.returncode == 0, result.stderr
    assert len(written) == len(inputs) + 2
    for path in written:
        errors, warnings = dciodvfy_report(dciodvfy, path)
        assert errors == [], f"{path.name}: {errors}"
        for warning in warnings:
            assert any(re.search(pattern, warning) for pattern in ALLOWED_WARNINGS), f"undocumented: {warning}"


def test_jpeg_entropy_coded_data_is_unchanged_and_metadata_segments_are_gone(clinic_set):
    source = (TESTDATA / "photos/phone-gps.jpg").read_bytes()
    assert any(body.startswith(b"Exif") for _, body in app_segments(source))
    (path, ds), = [(p, d) for p, d in by_class(clinic_set)["1.2.840.10008.5.1.4.1.1.77.1.4"]
                   if d.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50" and d.Rows == 480]
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert scan_data(frame) == scan_data(source)
    assert [marker for marker, _ in app_segments(frame)] == []  # no APPn, no COM
    raw = path.read_bytes()
    for needle in (b"Exif", b"GPS", b"Jane Example", b"xmpmeta", b"clinic room"):
        assert needle not in raw
    assert ds.AcquisitionDateTime == "20260314092653.123+0100"
    assert ds.Manufacturer == "FacetPhone Inc."
    assert ds.ManufacturerModelName == "FP-12 Pro"
    assert not hasattr(ds, "GPSVersionID")


def test_person_name_and_codes_round_trip_through_pydicom(clinic_set):
    for _, ds in by_class(clinic_set)["1.2.840.10008.5.1.4.1.1.77.1.4"]:
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert str(ds.PatientName) == "Müller^Jürgen"
        assert ds.AnatomicRegionSequence[0].CodeValue == "89545001"
        assert ds.AnatomicRegionSequence[0].CodingSchemeDesignator == "SCT"


def test_obj_mtl_and_texture_are_linked(clinic_set):
    classes = by_class(clinic_set)
    (obj_path, obj), = classes["1.2.840.10008.5.1.4.1.1.104.4"]
    (_, mtl), = classes["1.2.840.10008.5.1.4.1.1.104.5"]
    textures = [ds for _, ds in classes["1.2.840.10008.5.1.4.1.1.77.1.4"] if ds.Rows == 256]
    assert len(textures) == 1
    assert obj.ModelGroupUID == mtl.ModelGroupUID
    assert obj.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == mtl.SOPInstanceUID
    assert obj.ReferencedInstanceSequence[0][0x00687005].value == "face.mtl"
    assert mtl.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == textures[0].SOPInstanceUID
    assert mtl.ReferencedInstanceSequence[0][0x00687005].value == "face_texture.jpg"
    original = (TESTDATA / "meshes/face/face.obj").read_bytes()
    assert obj.EncapsulatedDocument[:obj.EncapsulatedDocumentLength] == original
    assert obj.MIMETypeOfEncapsulatedDocument == "model/obj"
    assert obj.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    for attribute in ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions"):
        assert getattr(obj, attribute)


def test_stl_is_encapsulated_byte_for_byte(clinic_set):
    (_, stl), = by_class(clinic_set)["1.2.840.10008.5.1.4.1.1.104.3"]
    original = (TESTDATA / "meshes/cube-binary.stl").read_bytes()
    assert stl.EncapsulatedDocument[:stl.EncapsulatedDocumentLength] == original
    assert stl.MIMETypeOfEncapsulatedDocument == "model/stl"
    assert stl.Modality == "M3D"
    assert stl.FrameOfReferenceUID


def expected_png_pixels(name):
    image = Image.open(TESTDATA / "photos" / name)
    if name == "gray16.png":
        values = np.asarray(image).astype(np.float64)
        return np.floor(values * 255 / 65535 + 0.5).astype(np.uint8)
    if name == "alpha.png":
        rgba = np.asarray(image.convert("RGBA")).astype(np.int64)
        alpha = rgba[..., 3:4]
        return ((rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    if image.mode in ("L",):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("name", ["rgb.png", "gray.png", "palette.png", "alpha.png", "gray16.png"])
def test_png_pixels_equal_the_decoded_source(facet, tmp_path, name):
    result, written = dicomize(facet, tmp_path, TESTDATA / "photos" / name)
    assert result.returncode == 0, result.stderr
    ds = pydicom.dcmread(written[0])
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.LossyImageCompression == "00"
    expected = expected_png_pixels(name)
    assert np.array_equal(ds.pixel_array, expected)


@pytest.mark.parametrize("name", ["ycbcr-444.jpg", "progressive.jpg"])
def test_transcoded_jpegs_decode_to_the_same_pixels_as_libjpeg(facet, tmp_path, name):
    result, written = dicomize(facet, tmp_path, TESTDATA / "photos" / name)
    assert result.returncode == 0, result.stderr
    ds = pydicom.dcmread(written[0])
    assert ds.PhotometricInterpretation == "RGB"
    assert ds.LossyImageCompression == "01"
    expected = np.asarray(Image.open(TESTDATA / "photos" / name).convert("RGB")).astype(int)
    assert np.abs(ds.pixel_array.astype(int) - expected).max() <= 1


BAD_INPUTS = [
    ("bad/empty.jpg", "empty"),
    ("bad/text.jpg", "not a JPEG or PNG"),
    ("bad/truncated.jpg", "truncated"),
    ("photos/cmyk.jpg", "CMYK"),
    ("photos/arithmetic.jpg", "arithmetic"),
    ("photos/twelve-bit.jpg", "12-bit"),
    ("bad/bomb.png", "exceeds the limit"),
    ("bad/missing-mtl.obj", "does not exist"),
    ("bad/escape/relative.obj", "leaves the mesh's folder"),
    ("bad/escape/absolute.obj", "absolute path"),
    ("bad/count-mismatch.stl", "claims 4000000000 triangles"),
]


@pytest.mark.parametrize("name,reason", BAD_INPUTS)
def test_bad_input_gets_one_line_a_nonzero_exit_and_no_file(facet, tmp_path, name, reason):
    result, written = dicomize(facet, tmp_path, TESTDATA / name)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facet: ") and reason in lines[0], result.stderr
    assert written == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,reason", [
    (("--study-uid", "1.2.03"), "leading zero"),
    (("--study-uid", "1.2.abc"), "digits and dots"),
    (("--view", "sideways"), "unknown view"),
    (("--timing", "whenever"), "unknown timing"),
    (("--region", "elbowish"), "unknown region"),
])
def test_bad_options_are_refused_before_anything_is_written(facet, tmp_path, args, reason):
    result, written = dicomize(facet, tmp_path / "out", TESTDATA / "photos/rgb.png", args=args)
    assert result.returncode != 0
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_mixed_inputs_exit_nonzero_but_write_the_good_ones(facet, tmp_path):
    result, written = dicomize(facet, tmp_path, TESTDATA / "photos/rgb.png", TESTDATA / "bad/text.jpg")
    assert result.returncode == 1
    assert len(written) == 1 and written[0].exists()
    assert "input 2" in result.stderr


def test_error_lines_never_echo_file_names(facet, tmp_path):
    named = tmp_path / "Doe_Jane_1970.jpg"
    named.write_text("not an image")
    result, _ = dicomize(facet, tmp_path / "out", named)
    assert result.returncode != 0
    assert "Doe" not in result.stderr and "Jane" not in result.stderr


def normalise(node):
    """Comparable form of a DICOM JSON value: numbers as floats."""
    if isinstance(node, dict):
        return {key: normalise(value) for key, value in node.items()}
    if isinstance(node, list):
        return [normalise(value) for value in node]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    return node


def test_dump_json_matches_dcm2json(facet, tmp_path):
    inputs = [TESTDATA / "photos/rgb.png", TESTDATA / "photos/ycbcr-444.jpg", TESTDATA / "meshes/face/face.obj",
              TESTDATA / "meshes/cube-binary.stl"]
    result, written = dicomize(facet, tmp_path, *inputs,
                               args=("--patient-name", "Müller^Jürgen=ミュラー^ユルゲン", "--region", "face",
                                     "--view", "frontal"))
    assert result.returncode == 0, result.stderr
    compared = 0
    for path in written:
        if pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed:
            continue  # dcm2json cannot write encapsulated pixel data as InlineBinary
        ours = run(facet, "dump", "--json", "--bulk-threshold", "4294967295", path)
        theirs = run("dcm2json", path)
        assert ours.returncode == 0, ours.stderr
        assert theirs.returncode == 0, theirs.stderr
        assert normalise(json.loads(ours.stdout)) == normalise(json.loads(theirs.stdout)), path.name
        compared += 1
    assert compared == len(written) - 1 >= 5  # all but the JPEG texture


def test_dump_refuses_non_dicom_with_one_line(facet, tmp_path):
    for content in (b"", b"hello", (TESTDATA / "photos/gray.jpg").read_bytes()):
        path = tmp_path / "x.dcm"
        path.write_bytes(content)
        result = run(facet, "dump", "--json", path)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1 and "not a DICOM" in result.stderr
        assert result.stdout == ""


def test_dump_json_uses_bulkdata_uri_for_pixel_data(facet, clinic_set):
    path = clinic_set[0]
    result = run(facet, "dump", "--json", path)
    data = json.loads(result.stdout)
    pixel = data.get("7FE00010") or data.get("00420011")
    assert pixel is not None and "BulkDataURI" in pixel and "InlineBinary" not in pixel


def test_ascii_stl_and_ply_become_valid_3d_objects(facet, dciodvfy, tmp_path):
    generated = TESTDATA / "generated" / "pairs" / "cheek_after.ply"
    result, written = dicomize(facet, tmp_path, TESTDATA / "meshes/cube-ascii.stl", generated,
                               args=("--patient-id", "P9", "--region", "face"))
    assert result.returncode == 0, result.stderr
    classes = by_class(written)
    (stl_path, stl), = classes["1.2.840.10008.5.1.4.1.1.104.3"]
    document = stl.EncapsulatedDocument[:stl.EncapsulatedDocumentLength]
    assert len(document) == 84 + 50 * struct.unpack("<I", document[80:84])[0] == 84 + 50 * 12
    (obj_path, obj), = classes["1.2.840.10008.5.1.4.1.1.104.4"]
    text = obj.EncapsulatedDocument[:obj.EncapsulatedDocumentLength].decode()
    assert text.count("\nv ") + text.startswith("v ") > 1000 and "\nf " in text
    for path in (stl_path, obj_path):
        errors, _ = dciodvfy_report(dciodvfy, path)
        assert errors == []


def test_objects_without_any_metadata_are_still_valid(facet, dciodvfy, tmp_path):
    result, written = dicomize(facet, tmp_path, TESTDATA / "photos/rgb.png", TESTDATA / "photos/phone-gps.jpg",
                               TESTDATA / "meshes/cube-binary.stl")
    assert result.returncode == 0, result.stderr
    for path in written:
        errors, _ = dciodvfy_report(dciodvfy, path)
        assert errors == [], f"{path.name}: {errors}"
