#!/usr/bin/env bash
# Builds `meshkit-bench` from an earlier revision of MeshKit (release), for benchmarks that compare this build with
# it in one run: the revision's Sources/MeshKit and Benchmarks/MeshKitBench in a package of their own (MeshKit has
# no dependencies), so nothing else of that revision is resolved or built. Prints the binary's path.
# Usage: scripts/baseline-meshkit-bench.sh REV [FOLDER]
set -euo pipefail
rev=${1:?usage: baseline-meshkit-bench.sh REV [FOLDER]}
folder=${2:-/tmp/facet-baseline-$(git rev-parse --short "$rev")}
mkdir -p "$folder/Sources"
rm -rf "$folder/Sources/MeshKit" "$folder/Sources/meshkit-bench"
git archive "$rev" Sources/MeshKit Benchmarks/MeshKitBench | tar -x -C "$folder"
mv "$folder/Benchmarks/MeshKitBench" "$folder/Sources/meshkit-bench"
rmdir "$folder/Benchmarks"
cat > "$folder/Package.swift" <<'SWIFT'
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "meshkit-baseline",
    targets: [
        .target(name: "MeshKit", swiftSettings: [.unsafeFlags(["-O"])]),
        .executableTarget(name: "meshkit-bench", dependencies: ["MeshKit"]),
    ])
SWIFT
(cd "$folder" && swift build -c release --product meshkit-bench >&2)
echo "$(cd "$folder" && swift build -c release --show-bin-path)/meshkit-bench"
