"""DICOMweb conformance against a live server (PS3.18; ../shared/reference/dicomweb-checklist.md section 8).

Starts `facet serve` on a free loopback port with a temporary data folder, or uses `--base-url` (the same suite
run against Orthanc lists Orthanc's deviations as failures). Clients are the stock `dicomweb-client`, `requests`,
DCMTK's command-line tools on retrieved parts, and `dciodvfy -new` on every retrieved object."""
import io
import json
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from conftest import TESTDATA, run

PATIENT = "Conformance^Dana"
PID = "CONF-" + uuid.uuid4().hex[:8]


def dicomize(facet, out, *inputs, study_date="20250110", **options):
    Path(out).mkdir(parents=True, exist_ok=True)
    metadata = Path(out) / "metadata.json"
    metadata.write_text(json.dumps({
        "patient": {"id": PID, "name": PATIENT, "birthDate": "19800101", "sex": "F"},
        "study": {"date": study_date, "time": "093000", "accessionNumber": "A-" + PID},
    }))
    args = [facet, "dicomize", *inputs, "--out", out, "--metadata", metadata]
    for key, value in options.items():
        args += [f"--{key}", value]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    return sorted(Path(out).glob("*.dcm"))


def secondary_capture(path, transfer_syntax=ExplicitVRLittleEndian, study=None):
    """A minimal Secondary Capture image, as a clinic's PACS might send (any transfer syntax)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT
    ds.PatientID = PID
    ds.StudyDate = "20250301"
    ds.StudyTime = "080000"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesNumber = 9
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns = 4, 6
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(24))
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def stored(server, facet, tmp_path_factory):
    """Stores photos, an OBJ with MTL and texture, and Secondary Captures through the stock client."""
    _, url = server
    folder = tmp_path_factory.mktemp("objects")
    photos = dicomize(
        facet, folder / "photos", TESTDATA / "photos/ycbcr-422.jpg", TESTDATA / "photos/rgb.png",
        region="face", view="frontal", timing="before",
    )
    meshes = dicomize(facet, folder / "meshes", TESTDATA / "meshes/face/face.obj", region="face", timing="before")
    implicit = secondary_capture(folder / "sc-implicit.dcm", ImplicitVRLittleEndian)
    files = photos + meshes + [implicit]
    # The client's own session, closed after the module: a kept-alive TLS connection would hold the server's
    # shutdown for its close_notify timeout (5 s).
    session = requests.Session()
    client = DICOMwebClient(url=url, session=session)
    datasets = [pydicom.dcmread(f) for f in files]
    response = client.store_instances(datasets)
    referenced = response.get("ReferencedSOPSequence") or []
    assert len(referenced) == len(files)
    by_class = {}
    for ds, path in zip(datasets, files):
        by_class.setdefault(str(ds.SOPClassUID), []).append((ds, path))
    yield {"client": client, "url": url, "files": files, "by_class": by_class, "datasets": datasets}
    session.close()


OBJ = "1.2.840.10008.5.1.4.1.1.104.4"
VLP = "1.2.840.10008.5.1.4.1.1.77.1.4"


def jpeg_photo(stored):
    return next(item for item in stored["by_class"][VLP]
                if item[0].file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50")


def instance_url(url, ds):
    return f"{url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def parse_multipart(response):
    """Parts of a multipart/related answer as (headers dict, bytes)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {response.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + response.content)
    return [(dict(part.items()), part.get_payload(decode=True)) for part in message.iter_parts()]


# --- STOW-RS -------------------------------------------------------------------------------------------------


def test_store_is_idempotent_and_conflicts_are_refused(stored):
    client, url = stored["client"], stored["url"]
    ds, path = stored["by_class"][VLP][0]
    again = client.store_instances([pydicom.dcmread(path)])
    assert len(again.ReferencedSOPSequence) == 1
    changed = pydicom.dcmread(path)
    changed.StudyDescription = "changed content, same SOP Instance UID"
    body, boundary = multipart_body([changed])
    answer = requests.post(f"{url}/studies", data=body, headers={"Content-Type": stow_type(boundary)})
    assert answer.status_code == 409
    failed = answer.json()["00081198"]["Value"]
    assert failed[0]["00081197"]["Value"] == [0x0111]


def stow_type(boundary, quoted=True):
    return f'multipart/related; type="application/dicom"; boundary={boundary}' if quoted else (
        f"multipart/related; type=application/dicom; boundary={boundary}")


def multipart_body(datasets_or_bytes, boundary="conformance"):
    out = b""
    for item in datasets_or_bytes:
        if isinstance(item, bytes):
            data = item
        else:
            buffer = io.BytesIO()
            item.save_as(buffer, enforce_file_format=True)
            data = buffer.getvalue()
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), boundary


def test_store_status_codes(stored, tmp_path):
    url = stored["url"]
    good = secondary_capture(tmp_path / "good.dcm")
    body, boundary = multipart_body([b"this is not DICOM", good.read_bytes()])
    # Unquoted type, chunked body (a generator makes requests send Transfer-Encoding: chunked).
    answer = requests.post(
        f"{url}/studies", data=iter([body[:100], body[100:]]), headers={"Content-Type": stow_type(boundary, False)}
    )
    assert answer.status_code == 202
    assert len(answer.json()["00081199"]["Value"]) == 1
    assert answer.json()["00081198"]["Value"][0]["00081197"]["Value"][0] in (0xC000, 0xA900)
    other = secondary_capture(tmp_path / "other.dcm")
    body, boundary = multipart_body([other.read_bytes()])
    answer = requests.post(f"{url}/studies/1.2.826.0.1.3680043.2.1143.1", data=body,
                           headers={"Content-Type": stow_type(boundary)})
    assert answer.status_code == 409
    answer = requests.post(f"{url}/studies", data=other.read_bytes(), headers={"Content-Type": "application/dicom"})
    assert answer.status_code == 415
    body, boundary = multipart_body([b"garbage"])
    answer = requests.post(f"{url}/studies", data=body, headers={"Content-Type": stow_type(boundary)})
    assert answer.status_code in (400, 409)


def test_store_response_in_xml(stored, tmp_path):
    body, boundary = multipart_body([secondary_capture(tmp_path / "x.dcm").read_bytes()])
    answer = requests.post(f"{stored['url']}/studies", data=body,
                           headers={"Content-Type": stow_type(boundary), "Accept": "application/dicom+xml"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/dicom+xml")
    assert b"<NativeDicomModel" in answer.content and b'tag="00081199"' in answer.content


# --- QIDO-RS -------------------------------------------------------------------------------------------------


def test_search_with_the_stock_client(stored):
    client = stored["client"]
    studies = client.search_for_studies(search_filters={"PatientID": PID})
    assert len(studies) >= 2
    first = studies[0]
    for tag in ("00080020", "00080030", "00080050", "00080061", "00080090", "00100010", "00100020", "00100030",
                "00100040", "00200010", "0020000D", "00201206", "00201208"):
        assert tag in first, f"required study attribute {tag} missing"
    assert first["00100010"]["Value"][0]["Alphabetic"] == PATIENT
    series = client.search_for_series(search_filters={"PatientID": PID, "Modality": "M3D"})
    assert len(series) == 1 and series[0]["00080060"]["Value"] == ["M3D"]
    instances = client.search_for_instances(
        study_instance_uid=series[0]["0020000D"]["Value"][0], search_filters={"SOPClassUID": OBJ})
    assert len(instances) == 1


@pytest.mark.parametrize(
    "query,expect_some",
    [
        ({"PatientName": "conformance^d*"}, True),  # PN matches case-insensitively (our conformance statement)
        ({"PatientName": "Conformance^D?na"}, True),
        ({"PatientName": "Nobody*"}, False),
        ({"StudyDate": "20250101-20250131"}, True),
        ({"StudyDate": "-20250131"}, True),
        ({"StudyDate": "20990101-"}, False),
        ({"ModalitiesInStudy": "XC"}, True),
        ({"AccessionNumber": "*"}, True),
    ],
)
def test_matching(stored, query, expect_some):
    answer = requests.get(f"{stored['url']}/studies", params={**query, "PatientID": PID})
    assert answer.status_code == 200
    assert (len(answer.json()) > 0) == expect_some


def test_search_resources_paging_and_warnings(stored):
    url = stored["url"]
    ds = stored["by_class"][VLP][0][0]
    for path in ("/series", "/instances", f"/studies/{ds.StudyInstanceUID}/series",
                 f"/studies/{ds.StudyInstanceUID}/instances",
                 f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances"):
        answer = requests.get(url + path, params={"PatientID": PID} if path in ("/series", "/instances") else {})
        assert answer.status_code == 200 and len(answer.json()) >= 1, path
    page = requests.get(f"{url}/instances", params={"PatientID": PID, "limit": 1})
    assert len(page.json()) == 1
    assert "additional results" in page.headers.get("Warning", "")
    rest = requests.get(f"{url}/instances", params={"PatientID": PID, "limit": 1, "offset": 1})
    assert rest.json()[0]["00080018"] != page.json()[0]["00080018"]
    fuzzy = requests.get(f"{url}/studies", params={"PatientName": "Conf*", "fuzzymatching": "true"})
    assert "fuzzymatching" in fuzzy.headers.get("Warning", "")
    everything = requests.get(f"{url}/studies", params={"PatientID": PID, "includefield": "all"}).json()
    assert "00081030" in everything[0] or "00100010" in everything[0]
    empty = requests.get(f"{url}/studies", params={"PatientID": "NO-SUCH-PATIENT"})
    assert empty.status_code == 200 and empty.json() == []


def test_search_negotiation(stored):
    url = stored["url"]
    html = requests.get(f"{url}/studies", headers={"Accept": "text/html"})
    assert html.status_code == 406 and "Accept" in html.headers.get("Vary", "")
    xml = requests.get(f"{url}/studies", params={"PatientID": PID},
                       headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert xml.status_code == 200 and xml.headers["Content-Type"].startswith("multipart/related")
    assert all(b"NativeDicomModel" in body for _, body in parse_multipart(xml))
    bad = requests.get(f"{url}/studies", params={"StudyDate": "not-a-date"})
    assert bad.status_code == 400


# --- WADO-RS -------------------------------------------------------------------------------------------------


def test_retrieved_objects_are_valid_dicom(stored, dciodvfy, tmp_path):
    """Every object Facet made (photos, OBJ, MTL, texture), retrieved with the stock client: DCMTK reads it and
    dciodvfy -new finds no error."""
    client = stored["client"]
    made = [ds for ds, path in
            ((ds, path) for items in stored["by_class"].values() for ds, path in items)
            if path.name != "sc-implicit.dcm"]
    studies = sorted({str(ds.StudyInstanceUID) for ds in made})
    wanted = {str(ds.SOPInstanceUID) for ds in made}
    seen = set()
    for study in studies:
        for index, item in enumerate(client.retrieve_study(study)):
            if str(item.SOPInstanceUID) not in wanted:
                continue
            seen.add(str(item.SOPInstanceUID))
            out = tmp_path / f"{study[-12:]}-{index}.dcm"
            item.save_as(out, enforce_file_format=True)
            dump = run("dcmdump", out)
            assert dump.returncode == 0, dump.stderr
            check = run(dciodvfy, "-new", out)
            errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
            assert not errors, errors
    assert seen == wanted


def test_retrieve_instance_bytes_and_transfer_syntaxes(stored):
    url = stored["url"]
    ds, path = jpeg_photo(stored)
    target = instance_url(url, ds)
    single = requests.get(target, headers={"Accept": "application/dicom"})
    assert single.status_code == 200 and single.content == Path(path).read_bytes()
    star = requests.get(target, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    (headers, body), = parse_multipart(star)
    assert body == Path(path).read_bytes()
    assert "transfer-syntax=1.2.840.10008.1.2.4.50" in headers["Content-Type"].replace('"', "")
    refused = requests.get(
        target, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'})
    assert refused.status_code == 406
    missing = requests.get(f"{url}/studies/1.2.3.4.5/series/1.2.3/instances/1.2.3.4")
    assert missing.status_code == 404


def test_implicit_vr_instances_are_sent_as_explicit_vr(stored):
    url = stored["url"]
    ds, path = next(item for item in stored["by_class"]["1.2.840.10008.5.1.4.1.1.7"]
                    if item[1].name == "sc-implicit.dcm")
    answer = requests.get(instance_url(url, ds), headers={"Accept": 'multipart/related; type="application/dicom"'})
    (headers, body), = parse_multipart(answer)
    assert "transfer-syntax=1.2.840.10008.1.2.1" in headers["Content-Type"].replace('"', "")
    back = pydicom.dcmread(io.BytesIO(body))
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.PixelData == bytes(range(24)) and back.PatientName == PATIENT


def test_metadata_and_bulkdata_give_back_the_original_obj(stored):
    client = stored["client"]
    ds, path = stored["by_class"][OBJ][0]
    metadata = client.retrieve_instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    uri = metadata["00420011"]["BulkDataURI"]
    assert uri.startswith("http")
    original = (TESTDATA / "meshes/face/face.obj").read_bytes()
    assert client.retrieve_bulkdata(uri)[0] == original
    own = requests.get(uri, headers={"Accept": "model/obj"})
    assert own.headers["Content-Type"] == "model/obj" and own.content == original
    series_metadata = client.retrieve_series_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert len(series_metadata) >= 2  # OBJ and MTL


def test_frames_rendered_and_thumbnails(stored):
    client, url = stored["client"], stored["url"]
    ds, path = jpeg_photo(stored)
    frames = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1], media_types=("image/jpeg",))
    assert frames[0][:2] == b"\xff\xd8"
    native = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [1])
    assert len(native[0]) == ds.Rows * ds.Columns * 3
    target = instance_url(url, ds)
    jpeg = requests.get(target + "/rendered", params={"quality": 40}, headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200 and Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    png = requests.get(target + "/rendered", params={"viewport": "100,100"}, headers={"Accept": "image/png"})
    image = Image.open(io.BytesIO(png.content))
    assert image.format == "PNG" and max(image.size) == 100
    thumb = requests.get(f"{url}/studies/{ds.StudyInstanceUID}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    refused = requests.get(target + "/rendered", headers={"Accept": "application/dicom"})
    assert refused.status_code == 406


# --- Capabilities and CORS -----------------------------------------------------------------------------------


def test_capabilities_and_cors_preflight(stored):
    url = stored["url"]
    wadl = requests.options(url + "/")
    assert wadl.status_code == 200 and "wadl" in wadl.headers["Content-Type"]
    assert b"SearchForStudies" in wadl.content
    preflight = requests.options(url + "/studies", headers={"Origin": "http://ohif.example",
                                                             "Access-Control-Request-Method": "GET"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers.get("Access-Control-Allow-Origin")
