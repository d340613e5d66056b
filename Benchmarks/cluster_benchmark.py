#!/usr/bin/env python3
"""Facet as a cluster (PostgreSQL index, SeaweedFS blobs, `facet serve` replicas behind nginx: scripts/cluster.sh)
with 1 and with 3 replicas, against the embedded setup (one `facet serve`, SQLite index and data folder, no nginx),
on the same generated data set; and how long a store made through one replica takes to show in another's searches.

Every setup starts fresh, on loopback, one after the other; the data set is small VL Photographic instances (the
generator of dicomweb_benchmark.py, at a smaller image size) in studies of a few instances. Printed, per setup and
as a ratio to the embedded setup: STOW-RS instances/s (1 and 4 clients, one instance per request), QIDO-RS
requests/s and p50 latency (a PatientID search per request, rotating over the patients), WADO-RS requests/s and
MB/s (one instance per request, rotating over all of them), each replica's peak RSS; then the catch-up lag (store
through replica A, poll QIDO on replica B until the instance is there) p50/p99. QIDO and WADO use `wrk` when it is
installed (Python threads otherwise). Authentication is on: a physician's token (`--auth facet`, made with
`facet users` and a login), or a token of an identity provider whose key set is given to every replica
(`--auth oidc`).

    make bench-cluster            # or: .venv/bin/python Benchmarks/cluster_benchmark.py --facet .build/release/facet
"""
import argparse
import concurrent.futures as futures
import datetime
import io
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pydicom
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "conformance"))
sys.path.insert(0, str(ROOT / "Benchmarks"))
from cluster import FacetCluster  # noqa: E402
from dicomweb_benchmark import (  # noqa: E402
    Connection, Study, free_port, log_in, part10_bytes, peak_rss_mib, run_stow, stow, vl_photo, wait_ready)

# Settings of ours that must not leak from the caller's shell into the setups (a sourced cluster.env, say).
OWN = ("FACET_INDEX", "FACET_BLOBS", "FACET_S3_ENDPOINT", "FACET_S3_REGION", "FACET_MASTER_KEY", "FACET_PORT",
       "FACET_PUBLIC_BASE_URL", "FACET_OIDC_ISSUER", "FACET_OIDC_AUDIENCE", "FACET_OIDC_JWKS")


# --- data ------------------------------------------------------------------------------------------------------


def small_jpegs(count, width, height, quality=85):
    """Baseline 4:2:0 JPEGs of the given size: gradients plus sensor-like noise (as camera_jpegs, smaller)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for k in range(count):
        base = np.stack([(x / (3 + k)) % 256, (y / (2 + k)) % 256, ((x + y) / (5 + k)) % 256], -1)
        image = np.clip(base + rng.normal(0, 9, base.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)
        out.append(buffer.getvalue())
    return out


def small_photo(study, jpeg, number, width, height):
    """dicomweb_benchmark.vl_photo with Rows and Columns of the smaller JPEG; (Part-10 bytes, series, SOP UID)."""
    ds = pydicom.dcmread(io.BytesIO(vl_photo(study, jpeg, number)))
    ds.Rows, ds.Columns = height, width
    return part10_bytes(ds), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


# --- setups ----------------------------------------------------------------------------------------------------


class OIDC:
    """A stand-in identity provider: an RSA key, its JWKS file, and tokens every replica accepts."""

    def __init__(self, folder):
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.jwt = jwt
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid="bench", use="sig", alg="RS256")
        (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        self.env = {"FACET_OIDC_ISSUER": "https://idp.bench.example", "FACET_OIDC_AUDIENCE": "facet",
                    "FACET_OIDC_JWKS": str(folder / "jwks.json")}

    def token(self):
        now = int(time.time())
        return self.jwt.encode({"iss": self.env["FACET_OIDC_ISSUER"], "aud": "facet", "sub": "bench",
                                "preferred_username": "bench", "role": "physician", "iat": now, "exp": now + 3 * 3600,
                                "jti": uuid.uuid4().hex}, self.key, algorithm="RS256", headers={"kid": "bench"})


class Setup:
    def __init__(self, name, base, auth, pids, replicas, stop):
        self.name, self.base, self.auth, self.pids, self.replicas, self._stop = name, base, auth, pids, replicas, stop

    def stop(self):
        self._stop()


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if k not in OWN}
    env.update(extra)
    return env


def start_embedded(binary, folder, oidc):
    port = free_port()
    log = open(folder / "facet.log", "wb")
    process = subprocess.Popen([binary, "serve", "--data-dir", str(folder / "data"), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=clean_env(oidc.env if oidc else {}))
    wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
    token = oidc.token() if oidc else log_in(binary, folder / "data", f"http://127.0.0.1:{port}")

    def stop():
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()

    root = f"http://127.0.0.1:{port}"
    return Setup("embedded", root + "/dicomweb", {"Authorization": f"Bearer {token}"}, [process.pid], [root], stop)


def start_cluster(binary, folder, replicas, oidc):
    cluster = FacetCluster(binary, folder, replicas=replicas, extra_env=oidc.env if oidc else {})
    saved = {k: os.environ.pop(k) for k in OWN if k in os.environ and not (oidc and k in oidc.env)}
    try:
        cluster.start()
    finally:
        os.environ.update(saved)
    try:
        token = oidc.token() if oidc else cluster.log_in()
    except Exception as error:
        cluster.stop()
        raise SystemExit(f"logging in through nginx failed ({error}); a replica that does not know the account "
                         "(accounts and sessions not shared through the index) answers 401; --auth oidc measures "
                         "without Facet's own sessions") from error
    return Setup(f"{replicas} replica{'s' if replicas > 1 else ''}", cluster.url, {"Authorization": f"Bearer {token}"},
                 [r["pid"] for r in cluster.replicas], [r["root"] for r in cluster.replicas], cluster.stop)


# --- load --------------------------------------------------------------------------------------------------------


def wrk_run(base, paths, auth, seconds, connections, folder):
    """wrk over `paths` in turn: (requests/s, bytes/s, p50 seconds, non-2xx count)."""
    script = folder / "paths.lua"
    script.write_text("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
                      "local i = 0\nrequest = function()\n  i = i + 1\n"
                      "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
    host = base.split("/dicomweb")[0]
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script)]
    for name, value in auth.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(command + [host], capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    scale = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}[transfer.group(2)]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p50 = float(p50.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1}[p50.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    bad, errors = int(bad.group(1)) if bad else 0, errors.group(0) if errors else ""
    return rate, float(transfer.group(1)) * scale, p50, bad, errors


def threads_run(base, paths, auth, seconds, connections, headers):
    """Python threads (http.client keep-alive) when wrk is missing: same figures as wrk_run."""
    host = base.split("/dicomweb")[0]
    stop_at = time.perf_counter() + seconds
    samples, lock = [], threading.Lock()

    def worker(offset):
        connection, i, mine = Connection(base, auth), offset, []
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status, body = connection.get(host + paths[i % len(paths)], headers)
            mine.append((time.perf_counter() - started, len(body), status))
            i += 1
        with lock:
            samples.extend(mine)

    started = time.perf_counter()
    with futures.ThreadPoolExecutor(connections) as pool:
        list(pool.map(worker, range(connections)))
    elapsed = time.perf_counter() - started
    return (len(samples) / elapsed, sum(s[1] for s in samples) / elapsed, statistics.median(s[0] for s in samples),
            sum(1 for s in samples if s[2] != 200), "")


def load(setup, paths, seconds, connections, folder, headers):
    if shutil.which("wrk"):
        return wrk_run(setup.base, paths, {**setup.auth, **headers}, seconds, connections, folder)
    return threads_run(setup.base, paths, setup.auth, seconds, connections, headers)


def catch_up_lag(setup, instances, trials):
    """Seconds from a store's acknowledgement by replica A to replica B's QIDO finding the instance (A, B: each
    ordered pair of replicas in turn)."""
    sessions = [requests.Session() for _ in setup.replicas]
    for session in sessions:
        session.headers.update(setup.auth)
    pairs = [(a, b) for a in range(len(setup.replicas)) for b in range(len(setup.replicas)) if a != b]
    lags = []
    for trial in range(trials):
        a, b = pairs[trial % len(pairs)]
        data, uid = instances[trial]
        stow(sessions[a], setup.replicas[a] + "/dicomweb", [data])
        acknowledged = time.perf_counter()
        poll = Connection(setup.replicas[b] + "/dicomweb", setup.auth)
        while True:
            status, body = poll.get(f"{setup.replicas[b]}/dicomweb/instances", {"Accept": "application/dicom+json"},
                                    {"SOPInstanceUID": uid})
            if status == 200 and uid.encode() in body:
                break
            if time.perf_counter() - acknowledged > 10:
                raise SystemExit(f"instance {uid} not found on replica {b + 1} 10 s after replica {a + 1} stored it")
            time.sleep(0.002)
        lags.append(time.perf_counter() - acknowledged)
    return lags


# --- main --------------------------------------------------------------------------------------------------------


def machine_facts(binary):
    def first_line(command):
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    pg = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return [
        f"command: {' '.join([Path(sys.executable).name] + sys.argv)}",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"commit {first_line(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'])}"
        + (" (with uncommitted changes)" if first_line(['git', '-C', str(ROOT), 'status', '--porcelain']) != "?"
           else ""),
        f"machine: {os.cpu_count()} cores ({cpu}), {int(memory) / 1024 / 1024:.1f} GiB, {platform.platform()}",
        f"facet: {binary} ({'release' if '/release/' in str(binary) else 'not a release build'})",
        f"{subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}; "
        f"PostgreSQL: {first_line([str(pg[-1]), '--version']) if pg else '?'}; "
        f"load: {first_line(['wrk', '--version']) if shutil.which('wrk') else 'Python threads (wrk not installed)'}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facet", default=str(ROOT / ".build/release/facet"))
    parser.add_argument("--studies", type=int, default=60)
    parser.add_argument("--per-study", type=int, default=5)
    parser.add_argument("--size", default="640x480", help="photo size, WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each QIDO and WADO load (wrk -d)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections of the QIDO/WADO load")
    parser.add_argument("--lag-trials", type=int, default=200)
    parser.add_argument("--replicas", default="1,3", help="cluster sizes to measure (default 1,3)")
    parser.add_argument("--auth", choices=["facet", "oidc"], default="facet",
                        help="facet: a physician's own token (default); oidc: an identity provider's token")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    binary = Path(args.facet).resolve()
    if not binary.exists():
        raise SystemExit(f"no facet binary at {binary}")
    if not shutil.which("nginx"):
        raise SystemExit("nginx is missing: apt-get install -y nginx")
    width, height = (int(v) for v in args.size.split("x"))
    sizes = [int(n) for n in args.replicas.split(",") if n]

    for line in machine_facts(binary):
        print(line)
    work = Path(tempfile.mkdtemp(prefix="facet-bench-cluster-"))
    work.chmod(0o755)
    oidc = OIDC(work) if args.auth == "oidc" else None

    jpegs = small_jpegs(4, width, height)
    studies = [Study(n) for n in range(args.studies)]
    instances = []  # (study, series, sop uid, bytes)
    for study in studies:
        for k in range(args.per_study):
            data, series, uid = small_photo(study, jpegs[(study.number + k) % len(jpegs)], k + 1, width, height)
            instances.append((study, series, uid, data))
    lag_study = Study(9999)
    lag_instances = [small_photo(lag_study, jpegs[k % len(jpegs)], k + 1, width, height)
                     for k in range(args.lag_trials)]
    lag_instances = [(data, uid) for data, _, uid in lag_instances]
    total_mb = sum(len(i[3]) for i in instances) / 1e6
    print(f"data: {len(instances)} VL photos ({width}x{height} JPEG, {total_mb / len(instances) * 1000:.0f} kB "
          f"each on average) in {len(studies)} studies; each setup stores all of them", flush=True)
    third = len(instances) // 3
    scenarios = [("STOW 1 client", 1, instances[:third]), ("STOW 4 clients", 4, instances[third:])]
    qido_paths = [f"/dicomweb/studies?PatientID={s.patient_id}" for s in studies]
    wado_paths = [f"/dicomweb/studies/{s.uid}/series/{series}/instances/{uid}" for s, series, uid, _ in instances]

    try:
        results, lag = {}, None
        runs = [("embedded", None)] + [(f"{n} replica{'s' if n > 1 else ''}", n) for n in sizes]
        for name, replicas in runs:
            folder = work / name.replace(" ", "-")
            folder.mkdir()
            print(f"{name}: starting", flush=True)
            setup = start_embedded(str(binary), folder, oidc) if replicas is None else \
                start_cluster(str(binary), folder, replicas, oidc)
            row = results.setdefault(name, {})
            try:
                for scenario, clients, chosen in scenarios:
                    seconds = run_stow(setup, [[i[3]] for i in chosen], clients)
                    row[scenario] = len(chosen) / seconds
                time.sleep(1)  # every replica's catalogue has followed the stores
                rate, throughput, p50, bad, errors = load(setup, qido_paths, args.seconds, args.connections, folder,
                                                          {"Accept": "application/dicom+json"})
                row["QIDO req/s"], row["QIDO p50 ms"] = rate, p50 * 1000
                if bad or errors:
                    print(f"  QIDO: {bad} answers not 2xx {errors}")
                rate, throughput, p50, bad, errors = load(setup, wado_paths, args.seconds, args.connections, folder,
                                                          {"Accept": "application/dicom"})
                row["WADO req/s"], row["WADO MB/s"] = rate, throughput / 1e6
                if bad or errors:
                    print(f"  WADO: {bad} answers not 2xx {errors}")
                row["peak RSS MiB (max replica)"] = max(peak_rss_mib(pid) for pid in setup.pids)
                print("  " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
                if replicas and replicas > 1 and args.lag_trials:
                    lags = catch_up_lag(setup, lag_instances, args.lag_trials)
                    lag = (len(lags), statistics.median(lags), np.percentile(lags, 99), max(lags))
            finally:
                setup.stop()

        print()
        names = [name for name, _ in runs]
        header = f"{'':30}" + "".join(f"{n:>14}" for n in names) + "".join(f"{n + ' / emb.':>20}" for n in names[1:])
        print(header)
        for metric in results["embedded"]:
            values = [results[n].get(metric, float("nan")) for n in names]
            line = f"{metric:30}" + "".join(f"{v:14.1f}" for v in values)
            base = values[0]
            line += "".join(f"{(v / base if base else float('nan')):19.2f}x" for v in values[1:])
            print(line)
        if lag:
            count, p50, p99, worst = lag
            print(f"\ncatch-up lag (store on replica A acknowledged -> replica B's QIDO finds it), {count} trials over "
                  f"every pair: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms")
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
