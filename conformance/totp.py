"""RFC 6238 codes for the suite's and the benchmark's logins (people log in with password and TOTP)."""
import base64
import hashlib
import hmac
import struct
import time
import urllib.parse


def totp_now(uri, steps_ahead=0):
    """The current code (HMAC-SHA1, 30 s, 6 digits) of an otpauth:// URI, or the code `steps_ahead` steps later (the
    server takes one step of drift; each code logs in once)."""
    secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + steps_ahead), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)
