# The two commands of the README: `make serve` and `make test`. Everything else is a step of theirs.
SWIFT ?= swift
BIN = $(shell $(SWIFT) build --show-bin-path)

.PHONY: serve test deps build lint unit conformance fuzz

deps:
	@bash scripts/bootstrap.sh

build: deps
	$(SWIFT) build --build-tests

lint:
	$(SWIFT) format lint --strict --recursive Package.swift Sources Tests Benchmarks Fuzz/Package.swift \
		Fuzz/Sources/FuzzOBJ Fuzz/Sources/FuzzPLY Fuzz/Sources/FuzzSTL Fuzz/Sources/FuzzSupport \
		Fuzz/Sources/FuzzDICOMJSON Fuzz/Sources/FuzzQIDO

testdata/generated/manifest.json: testdata/generate_meshes.py
	.venv/bin/python testdata/generate_meshes.py

# Both run with SeaweedFS started on loopback (scripts/with-services.sh): the blob contract suite and the DICOMweb
# suite run against the data folder and an S3-compatible store alike.
unit: build testdata/generated/manifest.json
	FACET_REQUIRE_DCIODVFY=1 bash scripts/with-services.sh $(SWIFT) test

conformance: build
	FACET_BIN="$(BIN)/facet" bash scripts/with-services.sh .venv/bin/python -m pytest -q conformance

# MeshKit's readers under libFuzzer + AddressSanitizer, briefly (FUZZ_SECONDS each; longer runs: make fuzz).
fuzz: deps
	bash scripts/fuzz.sh

test: deps lint unit conformance
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} bash scripts/fuzz.sh

serve: build
	@bash scripts/serve.sh "$(BIN)/facet"

# Benchmarks (not part of `make test`): MeshKit against trimesh, numpy-stl and plyfile; the DICOMweb server against
# Orthanc; the bearer-token check of every request (release build).
.PHONY: bench-mesh bench-dicomweb bench-tokens
bench-mesh: deps
	.venv/bin/pip install -q -r Benchmarks/requirements.txt
	.venv/bin/python Benchmarks/mesh_benchmark.py

# Facet (release build) against Orthanc from Debian (installed here when missing and root).
bench-dicomweb: deps
	@command -v Orthanc >/dev/null || { [ "$$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null; }
	$(SWIFT) build -c release --product facet
	.venv/bin/python Benchmarks/dicomweb_benchmark.py --facet "$$($(SWIFT) build -c release --show-bin-path)/facet"

# Facet's own ES256 tokens and an identity provider's RS256/ES256 tokens, checked against a SQLite store in a temp dir.
bench-tokens:
	$(SWIFT) build -c release --product token-bench
	"$$($(SWIFT) build -c release --show-bin-path)/token-bench" $${TOKEN_BENCH_ITERATIONS:-10000}
