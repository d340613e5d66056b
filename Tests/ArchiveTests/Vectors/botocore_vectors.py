#!/usr/bin/env python3
"""Cross-check vectors for SigV4SignerTests, computed by botocore's S3SigV4Auth.

Regenerate with:  python3 Tests/SigV4Tests/botocore_vectors.py
(needs botocore; the literals in SigV4SignerTests.swift were made with botocore 1.43.11) and paste
each case's canonical request and Authorization into the `botocoreCases` of SigV4SignerTests.swift.

Every case is signed at the fixed time 2026-03-01T08:09:10Z with the real payload SHA-256 in
x-amz-content-sha256 (payload signing forced on, as our signer always does), never UNSIGNED-PAYLOAD.
botocore's S3 signer takes the URL path as already percent-encoded (its serializer quotes keys with
safe='/~'), so the URLs below are built the same way; the query goes in as `params`, which botocore
encodes itself. The secret is a made-up test value.
"""

import datetime
import hashlib
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

FIXED_TIME = datetime.datetime(2026, 3, 1, 8, 9, 10)
botocore.auth.get_current_datetime = lambda *args, **kwargs: FIXED_TIME

ACCESS_KEY = "FACETTESTKEY"
SECRET_KEY = "facet/Test+Secret=Key/0123456789abcdefghij"

CASES = [
    {
        "name": "PUT object, key with spaces, unicode, '+' and '=', non-default port, session token",
        "method": "PUT",
        "origin": "http://seaweedfs.local:8333",
        "key": "/facet-archive/studies/1.2.840 A/Zoë Müller+x=y.dcm",
        "params": [],
        "headers": [("Content-Type", "application/dicom"), ("X-Amz-Meta-Patient", "  Doe   ^  John  ")],
        "body": b"DICM payload bytes",
        "region": "us-east-1",
        "token": "session/Token+With=Specials",
    },
    {
        "name": "GET list objects v2, query values with spaces, unicode, '+', '/', '=' and an empty value",
        "method": "GET",
        "origin": "https://minio.example.org:9000",
        "key": "/facet-archive",
        "params": [
            ("prefix", "studies/a b/ü"),
            ("list-type", "2"),
            ("delimiter", "/"),
            ("continuation-token", "abc+/def=="),
            ("fetch-owner", ""),
        ],
        "headers": [("Range", "bytes=0-9")],
        "body": b"",
        "region": "eu-central-1",
        "token": None,
    },
    {
        "name": "POST initiate multipart upload (?uploads), explicit default https port",
        "method": "POST",
        "origin": "https://s3.example.com:443",
        "key": "/bucket/dir/key with space.bin",
        "params": [("uploads", "")],
        "headers": [("Content-Type", "application/octet-stream")],
        "body": b"",
        "region": "us-west-2",
        "token": None,
    },
    {
        "name": "DELETE object, reserved characters and a literal '%' in the key, explicit default http port",
        "method": "DELETE",
        "origin": "http://ceph-rgw.local:80",
        "key": "/bucket/odd!*'()$&,;@:~%key",
        "params": [("versionId", "3/L4kqtJl+cG=")],
        "headers": [],
        "body": b"",
        "region": "default",
        "token": None,
    },
]


class RecordingS3SigV4Auth(botocore.auth.S3SigV4Auth):
    """S3SigV4Auth that keeps the canonical request and string to sign it computed while signing."""

    def string_to_sign(self, request, canonical_request):
        self.recorded_canonical_request = canonical_request
        self.recorded_string_to_sign = super().string_to_sign(request, canonical_request)
        return self.recorded_string_to_sign


def sign(case):
    path = quote(case["key"], safe="/~")
    url = case["origin"] + path
    request = AWSRequest(
        method=case["method"],
        url=url,
        headers=dict(case["headers"]),
        data=case["body"],
        params=case["params"] or None,
    )
    request.context["client_config"] = Config(s3={"payload_signing_enabled": True})
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, case["token"])
    auth = RecordingS3SigV4Auth(credentials, "s3", case["region"])
    auth.add_auth(request)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in case["params"])
    return {
        "url": url + ("?" + query if query else ""),
        "payload": hashlib.sha256(case["body"]).hexdigest(),
        "canonical": auth.recorded_canonical_request,
        "string_to_sign": auth.recorded_string_to_sign,
        "headers": {k: v for k, v in request.headers.items()},
    }


if __name__ == "__main__":
    for case in CASES:
        result = sign(case)
        print("=" * 72)
        print("#", case["name"])
        print("url:", result["url"])
        print("payload sha256:", result["payload"])
        print("--- canonical request")
        print(result["canonical"])
        print("--- string to sign")
        print(result["string_to_sign"])
        print("--- signed headers")
        for name, value in result["headers"].items():
            print(f"{name}: {value}")
