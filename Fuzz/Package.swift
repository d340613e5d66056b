// swift-tools-version: 6.0
// libFuzzer targets for MeshKit's readers, kept out of the main package: they only link with
// -sanitize=fuzzer. Sources/MeshKit is a link to the main package's MeshKit. See README.md here.
import PackageDescription

let fuzzer: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "FacetFuzz",
    targets: [
        .target(name: "MeshKit", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "FuzzSupport", dependencies: ["MeshKit"]),
        .executableTarget(name: "FuzzOBJ", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzPLY", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
        .executableTarget(name: "FuzzSTL", dependencies: ["FuzzSupport", "MeshKit"], swiftSettings: fuzzer),
    ],
    swiftLanguageModes: [.v6]
)
