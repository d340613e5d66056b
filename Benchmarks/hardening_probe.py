"""Measures the hostile requests of the hardening issue against one or more `facet` binaries, side by side: the time
to refuse 8 MiB of multipart transport padding, the bytes answered for one frame asked 1000 times, and the latency of
`/health/live` while 12 renders of a 3000 x 3000 RGB image run. Not part of `make test` (a probe, not a check).

    .venv/bin/python Benchmarks/hardening_probe.py BIN [BIN ...]

e.g. the current build and one built from an older commit in another worktree."""
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "conformance"))
from conftest import FacetServer  # noqa: E402
from test_hardening import big_rgb, instance_url, sc_bytes, stow  # noqa: E402


def probe(binary):
    tmp = Path(tempfile.mkdtemp())
    server = FacetServer(binary, tmp / "data").start()
    try:
        data, ds = sc_bytes(tmp)
        assert stow(server.url, data).status_code == 200
        boundary = "pad-" + uuid.uuid4().hex
        body = (f"--{boundary}" + " " * (8 << 20) + "\r\nContent-Type: application/dicom\r\n\r\n").encode() + data
        body += f"\r\n--{boundary}--\r\n".encode()
        started = time.time()
        answer = requests.post(server.url + "/studies", data=body, timeout=600, headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
        print(f"  8 MiB of padding: {answer.status_code} in {time.time() - started:.3f} s")
        answer = requests.get(instance_url(server, ds) + "/frames/" + ",".join(["1"] * 1000),
                              headers={"Accept": "multipart/related; type=application/octet-stream"}, timeout=600)
        print(f"  frame 1 asked 1000 times: {answer.status_code}, {len(answer.content)} bytes")
        path, big = big_rgb(tmp)
        assert stow(server.url, path.read_bytes()).status_code == 200
        url = instance_url(server, big) + "/rendered"
        codes = []

        def render(quality):
            codes.append(requests.get(url, params={"quality": quality}, headers={"Accept": "image/jpeg"}).status_code)

        threads = [threading.Thread(target=render, args=(q,)) for q in range(50, 62)]
        for thread in threads:
            thread.start()
        latencies = []
        while any(thread.is_alive() for thread in threads):
            started = time.time()
            requests.get(server.root + "/health/live", timeout=600)
            latencies.append(time.time() - started)
            time.sleep(0.05)
        latencies.sort()
        print(f"  /health/live during 12 renders: {len(latencies)} probes, p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms,"
              f" max {latencies[-1] * 1e3:.1f} ms; renders answered {sorted(set(codes))}")
    finally:
        server.stop()


if __name__ == "__main__":
    for binary in sys.argv[1:]:
        print(binary)
        probe(binary)
