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
	FACET_BIN="$(BIN)/facet" bash scripts/with-services.sh .venv/bin/python -m pytest -q -n 2 --durations=12 conformance

# Not part of `make test`: the S3 suites against Ceph's RGW from Debian (scripts/ceph.sh, a throwaway single node),
# stricter than SeaweedFS on SigV4 payload hashes; Ceph is stopped whatever the outcome.
.PHONY: test-ceph
test-ceph: build
	@folder=$$(mktemp -d /tmp/facet-ceph.XXXXXX); \
	trap 'bash scripts/ceph.sh stop "$$folder"; rm -rf "$$folder"' EXIT; \
	settings=$$(bash scripts/ceph.sh start "$$folder") && eval "$$settings" && export FACET_REQUIRE_S3=1 && \
	$(SWIFT) test --skip-build --filter 'ObjectStoreContract|BlobStoreContract|S3ObjectStore' && \
	FACET_BIN="$(BIN)/facet" .venv/bin/python -m pytest -q conformance/test_dicomweb.py -k s3

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

# `facet compare`'s volume accuracy and the coverage of its 95 % interval on the generated grid (issue 11 §3): narrow
# and wide bumps and null pairs, noise σ 0.05-0.3 mm on both captures, with and without holes; ACCURACY_SEEDS per cell.
.PHONY: bench-accuracy
bench-accuracy: deps
	$(SWIFT) build -c release --product facet
	.venv/bin/python Benchmarks/accuracy_benchmark.py --facet "$$($(SWIFT) build -c release --show-bin-path)/facet" \
		--seeds $${ACCURACY_SEEDS:-8}

# The comparison report end to end on the large generated pair (525 k + 378 k vertices): the compare beside a
# baseline build of MeshKit at BASELINE_REV (default: before the smooth-surface reading of issue 11 §3), the three
# views at 1024², a job on a live server from POST to done, the HTML page drawn on request.
.PHONY: bench-report
BASELINE_REV ?= 31fcd8e
bench-report: deps
	@grep -qs "\"large\"" testdata/generated/manifest.json && test -f testdata/generated/large/face500k_before.obj || .venv/bin/python testdata/generate_meshes.py --large
	$(SWIFT) build -c release --product facet
	$(SWIFT) build -c release --product meshkit-bench
	baseline=$$(bash scripts/baseline-meshkit-bench.sh $(BASELINE_REV)) && \
	.venv/bin/python Benchmarks/report_benchmark.py --facet "$$($(SWIFT) build -c release --show-bin-path)/facet" \
		--bench "$$($(SWIFT) build -c release --show-bin-path)/meshkit-bench" --baseline-bench "$$baseline"

# Facet's own ES256 tokens and an identity provider's RS256/ES256 tokens, checked against a SQLite store in a temp dir.
bench-tokens:
	$(SWIFT) build -c release --product token-bench
	"$$($(SWIFT) build -c release --show-bin-path)/token-bench" $${TOKEN_BENCH_ITERATIONS:-10000}

# A local scale-out setup on loopback (scripts/cluster.sh): PostgreSQL (port 25433), SeaweedFS (28400-28415), three
# `facet serve` replicas (28421-28423) sharing them and one master key, nginx in front at http://127.0.0.1:28420
# (round robin). Data and logs in CLUSTER_DIR, kept across stop/start; `make cluster-stop` ends exactly what
# `make cluster` started. Ports: CLUSTER_PORT, CLUSTER_REPLICA_PORT, CLUSTER_S3_PORT, CLUSTER_PG_PORT.
.PHONY: cluster cluster-stop bench-cluster
CLUSTER_DIR ?= /tmp/facet-cluster
CLUSTER_REPLICAS ?= 3
cluster: build
	@command -v nginx >/dev/null || { [ "$$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	@FACET_BIN="$(BIN)/facet" bash scripts/cluster.sh start "$(CLUSTER_DIR)" $(CLUSTER_REPLICAS)
	@echo
	@echo "Facet at $$(. "$(CLUSTER_DIR)/cluster.env" && echo $$FACET_CLUSTER_URL)/dicomweb (nginx); replica logs in $(CLUSTER_DIR)/replica-N/serve.log"
	@echo "Add a user (same environment as the replicas), then log in with POST /api/v1/auth/login:"
	@echo "  . $(CLUSTER_DIR)/cluster.env && $(BIN)/facet users add NAME --role physician --data-dir $(CLUSTER_DIR)/replica-1/data"
	@echo "Stop: make cluster-stop$(if $(filter command line environment,$(origin CLUSTER_DIR)), CLUSTER_DIR=$(CLUSTER_DIR))"

cluster-stop:
	bash scripts/cluster.sh stop "$(CLUSTER_DIR)"

# The picture of a comparison report in the README, from the generated cheek pair (no patient data).
.PHONY: report-picture
report-picture: build testdata/generated/manifest.json
	"$(BIN)/facet" compare testdata/generated/pairs/cheek_before.obj testdata/generated/pairs/cheek_after.ply \
		--roi sphere:35,-10,52.688811,24.5 --title "Generated cheek pair (0.92 mL bump)" \
		--patient-name "Doe^Zoë" --patient-id DEMO-001 --report /tmp/facet-report-picture.pdf >/dev/null
	pdftoppm -r 60 -png -singlefile /tmp/facet-report-picture.pdf docs/report-page
	rm -f /tmp/facet-report-picture.pdf

# The cluster (1 and 3 replicas behind nginx) against the embedded setup on the same data, and the replicas'
# catch-up lag (release build; wrk installed when missing and root, else Python threads load the servers).
bench-cluster: deps
	@command -v nginx >/dev/null || { [ "$$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	@command -v wrk >/dev/null || { [ "$$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || true
	$(SWIFT) build -c release --product facet
	.venv/bin/python Benchmarks/cluster_benchmark.py --facet "$$($(SWIFT) build -c release --show-bin-path)/facet" $(BENCH_CLUSTER_ARGS)
