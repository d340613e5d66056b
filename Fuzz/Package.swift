// swift-tools-version: 6.0
// libFuzzer targets for MeshKit's readers and DICOMCore's DICOM JSON decoder and QIDO query parsing, kept out of
// the main package: they only link with -sanitize=fuzzer. Sources/MeshKit and Sources/DICOMCore are links to the
// main package's modules. See README.md here.
import PackageDescription

let fuzzer: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "FacetFuzz",
    targets: [
        .target(name: "MeshKit", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "DICOMCore", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "FuzzSupport", dependencies: ["MeshKit"]),
        .executableTarget(name: "FuzzOBJ", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzPLY", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzSTL", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
        .executableTarget(
            name: "FuzzDICOMJSON", dependencies: ["FuzzSupport", "DICOMCore"], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzQIDO", dependencies: ["FuzzSupport", "DICOMCore"], swiftSettings: fuzzer),
    ],
    swiftLanguageModes: [.v6]
)
