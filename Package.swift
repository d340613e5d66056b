// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Facet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "facet", targets: ["facet"]),
        .library(name: "DICOMCore", targets: ["DICOMCore"]),
        .library(name: "DICOMCodec", targets: ["DICOMCodec"]),
        .library(name: "MeshKit", targets: ["MeshKit"]),
        .library(name: "Archive", targets: ["Archive"]),
        .library(name: "ArchiveServer", targets: ["ArchiveServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CDCMTK",
            cxxSettings: [
                .unsafeFlags(["-Wno-deprecated-declarations"])
            ],
            linkerSettings: [
                .linkedLibrary("dcmjpeg"),
                .linkedLibrary("dcmimage"),
                .linkedLibrary("dcmimgle"),
                .linkedLibrary("i2d"),
                .linkedLibrary("dcmdata"),
                .linkedLibrary("oflog"),
                .linkedLibrary("ofstd"),
                .linkedLibrary("png"),
                .linkedLibrary("jpeg"),
                .linkedLibrary("z"),
            ]
        ),
        // cairo from Debian (libcairo2-dev): the PDF comparison report.
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),
        .target(name: "DICOMCore"),
        // Geometry is unusable unoptimised (tests would take minutes); MeshKit is always built with -O.
        .target(name: "MeshKit", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "DICOMCodec", dependencies: ["CDCMTK", "CCairo", "DICOMCore", "MeshKit"]),
        .target(
            name: "Archive",
            dependencies: [
                "DICOMCodec", "DICOMCore", "MeshKit", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ]),
        // The DICOMweb server (Hummingbird 2): routes, controllers, multipart, middleware. Handlers stay thin.
        .target(
            name: "ArchiveServer",
            dependencies: [
                "Archive", "DICOMCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The OpenAPI document of /api/v1, served as it is (read through `Resources`, never `Bundle.module`).
            resources: [.copy("Resources/openapi.json")]),
        .executableTarget(
            name: "facet",
            dependencies: [
                "Archive", "ArchiveServer", "DICOMCodec", "DICOMCore", "MeshKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(name: "meshkit-bench", dependencies: ["MeshKit"], path: "Benchmarks/MeshKitBench"),
        .executableTarget(
            name: "token-bench",
            dependencies: [
                "Archive", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ], path: "Benchmarks/TokenBench"),
        .testTarget(name: "DICOMCoreTests", dependencies: ["DICOMCore"]),
        .testTarget(name: "DICOMCodecTests", dependencies: ["DICOMCodec", "DICOMCore", "MeshKit"]),
        .testTarget(name: "MeshKitTests", dependencies: ["MeshKit"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive"], exclude: ["Vectors"]),
        .testTarget(
            name: "ArchiveServerTests",
            dependencies: [
                "ArchiveServer", "Archive", "DICOMCodec", "DICOMCore", "MeshKit",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
