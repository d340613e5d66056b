#!/usr/bin/env bash
# Builds the libFuzzer targets (MeshKit's readers, DICOM JSON decoding, QIDO query parsing and matching; Fuzz/, with AddressSanitizer) and runs each for FUZZ_SECONDS (default 15,
# seed FUZZ_SEED, default 1, so that a run can be repeated)
# on a copy of its committed seed corpus. A crash, leak, hang (>10 s per input) or >2 GiB RSS fails the run;
# libFuzzer writes the input that broke it into the working folder: keep it under testdata/regressions/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-15}"
(cd Fuzz && swift build --scratch-path ../.build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld >/dev/null)
bin=.build-fuzz/debug
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in OBJ PLY STL DICOMJSON QIDO; do
    lower=$(echo "$target" | tr '[:upper:]' '[:lower:]')
    mkdir -p "$work/$lower"
    cp Fuzz/Corpus/"$lower"/* "$work/$lower/"
    echo "fuzz: Fuzz$target for ${seconds}s"
    if ! (cd "$work" && "$OLDPWD/$bin/Fuzz$target" "$lower" -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$work/$lower.log" 2>&1); then
        grep -E "ERROR|SUMMARY|artifact|Test unit written" "$work/$lower.log" | head -20
        mkdir -p testdata/regressions
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* testdata/regressions/ 2>/dev/null || true
        echo "fuzz: Fuzz$target failed; the input is in testdata/regressions/"
        exit 1
    fi
    grep -E "^stat::number_of_executed_units" "$work/$lower.log" || true
done
echo "fuzz: no crash"
