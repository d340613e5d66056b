"""Transmission security on a live `facet serve --tls-cert --tls-key` (HIPAA §164.312(e)): TLS 1.3 only by
default, a TLS 1.2-only client refused, HSTS on every answer, plain HTTP not answered, and the stock
dicomweb-client storing and retrieving over HTTPS with the server's certificate as its trust anchor. (The whole
DICOMweb suite, test_dicomweb.py, also runs over TLS: see conftest's `server`.)"""
import ssl

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import FacetServer, handshake
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")


@pytest.fixture(scope="module")
def secure(facet, certificate, tmp_path_factory):
    cert, key = certificate
    child = FacetServer(facet, tmp_path_factory.mktemp("tls-server") / "data",
                        extra_env={"FACET_TLS_CERT": str(cert), "FACET_TLS_KEY": str(key)}).start()
    yield child
    assert child.stop() == 0


def test_tls_1_3_is_spoken_and_tls_1_2_refused(secure):
    assert handshake(secure) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(secure, maximum=ssl.TLSVersion.TLSv1_2)


def test_plain_http_gets_no_answer(secure):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{secure.port}/dicomweb/studies", timeout=5)


def test_stock_client_over_https_and_hsts(secure, tmp_path):
    session = requests.Session()
    session.verify = secure.certificate
    # requests lets REQUESTS_CA_BUNDLE from the environment override a session's own trust anchor.
    session.trust_env = False
    client = DICOMwebClient(secure.url, session=session)
    path = secondary_capture(tmp_path / "sc.dcm")
    ds = pydicom.dcmread(path)
    client.store_instances([ds])
    found = client.search_for_instances(search_filters={"SOPInstanceUID": ds.SOPInstanceUID})
    assert len(found) == 1
    retrieved = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert retrieved.SOPInstanceUID == ds.SOPInstanceUID
    answer = session.get(secure.url + "/studies", headers={"Accept": "application/dicom+json"})
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    # RetrieveURLs name the HTTPS scheme.
    assert answer.json()[0]["00081190"]["Value"][0].startswith("https://")
