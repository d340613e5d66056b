import Foundation
import Testing

@testable import ArchiveServer

func folder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("facet-multipart-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func body(boundary: String, parts: [(String, Data)], preamble: String = "", epilogue: String = "") -> Data {
    var out = Data(preamble.utf8)
    for (type, content) in parts {
        out += Data("--\(boundary)\r\nContent-Type: \(type)\r\n\r\n".utf8) + content + Data("\r\n".utf8)
    }
    out += Data("--\(boundary)--\(epilogue)".utf8)
    return out
}

func read(_ data: Data, contentType: String, chunk: Int, limits: MultipartRelatedReader.Limits = .init()) throws
    -> [MultipartPart]
{
    let reader = try MultipartRelatedReader(contentType: contentType, temporaryFolder: try folder(), limits: limits)
    var offset = 0
    while offset < data.count {
        let end = min(data.count, offset + chunk)
        try reader.consume(data[offset..<end])
        offset = end
    }
    return try reader.finish()
}

@Suite struct MultipartTests {
    // Content that contains near-boundaries, CRLFs and dashes, as DICOM bytes can.
    let first = Data("DICM\r\n--abc\r\n-- not the boundary \r\n--abcd".utf8) + Data((0..<300).map { UInt8($0 % 256) })
    let second = Data(repeating: 0x2D, count: 40) + Data("\r\n".utf8)

    @Test(arguments: [1, 2, 3, 7, 64, 100_000])
    func partsSurviveAnyChunking(_ chunk: Int) async throws {
        let data = body(
            boundary: "abcde", parts: [("application/dicom", first), ("application/dicom", second)],
            preamble: "ignored preamble\r\n", epilogue: "\r\nignored epilogue")
        let parts = try read(
            data, contentType: "multipart/related; type=\"application/dicom\"; boundary=abcde", chunk: chunk)
        #expect(parts.count == 2)
        #expect(try parts[0].data() == first)
        #expect(try parts[1].data() == second)
        #expect(parts[0].contentType?.essence == "application/dicom")
        #expect(parts[1].size == second.count)
    }

    @Test func quotedAndUnquotedBoundariesAndParameters() async throws {
        let media = try #require(MediaType("Multipart/Related; type=\"application/dicom\"; boundary=\"a b;c\""))
        #expect(media.essence == "multipart/related")
        #expect(media.parameters["type"] == "application/dicom")
        #expect(media.parameters["boundary"] == "a b;c")
        let data = body(boundary: "a b;c", parts: [("application/dicom", first)])
        let parts = try read(
            data, contentType: "multipart/related; boundary=\"a b;c\"; type=application/dicom", chunk: 5)
        #expect(try parts[0].data() == first)
        #expect(MediaType("multipart/related; boundary=\"unclosed") == nil)
        #expect(MediaType("no-slash") == nil)
    }

    @Test func aBodyWithoutItsClosingBoundaryIsRefused() async throws {
        var data = body(boundary: "xyz", parts: [("application/dicom", first)])
        data = data.prefix(data.count - 7)
        let error = #expect(throws: MultipartError.self) {
            try read(data, contentType: "multipart/related; boundary=xyz", chunk: 10)
        }
        #expect(error?.status == 400)
    }

    @Test func limitsAreEnforcedWhileStreaming() async throws {
        let data = body(boundary: "xyz", parts: [("application/dicom", Data(count: 5000))])
        var limits = MultipartRelatedReader.Limits()
        limits.maximumPartBytes = 4096
        let part = #expect(throws: MultipartError.self) {
            try read(data, contentType: "multipart/related; boundary=xyz", chunk: 512, limits: limits)
        }
        #expect(part?.status == 413)
        limits = .init()
        limits.maximumBodyBytes = 1000
        let whole = #expect(throws: MultipartError.self) {
            try read(data, contentType: "multipart/related; boundary=xyz", chunk: 512, limits: limits)
        }
        #expect(whole?.status == 413)
    }

    @Test func nonMultipartOrBoundarylessContentTypesAreRefused() async {
        let wrong = #expect(throws: MultipartError.self) {
            try MultipartRelatedReader(contentType: "application/dicom", temporaryFolder: URL(fileURLWithPath: "/tmp"))
        }
        #expect(wrong?.status == 415)
        let missing = #expect(throws: MultipartError.self) {
            try MultipartRelatedReader(
                contentType: "multipart/related; type=application/dicom", temporaryFolder: URL(fileURLWithPath: "/tmp"))
        }
        #expect(missing?.status == 400)
    }

    @Test func emptyPartsAndTransportPaddingAreAccepted() async throws {
        let data = Data("--b  \r\nContent-Type: application/dicom\r\n\r\n\r\n--b\r\n\r\nxyz\r\n--b--".utf8)
        let parts = try read(data, contentType: "multipart/related; boundary=b", chunk: 3)
        #expect(parts.count == 2)
        #expect(parts[0].size == 0)
        #expect(try parts[1].data() == Data("xyz".utf8))
        #expect(parts[1].headers.isEmpty)
    }

    @Test func partsBeyondTheMemoryBudgetAreSpooledEncrypted() async throws {
        let secret = Data(repeating: 0x41, count: 3 << 20) + Data("Doe^Jane".utf8)
        let data = body(boundary: "b", parts: [("application/dicom", secret)])
        let parts = try read(
            data, contentType: "multipart/related; boundary=b", chunk: 64 << 10,
            limits: .init(memoryBudget: 1 << 20))
        let spool = try #require(parts[0].spool)
        let onDisk = try Data(contentsOf: spool.url)
        #expect(onDisk.count >= secret.count)
        #expect(onDisk.range(of: Data("Doe^Jane".utf8)) == nil)
        #expect(onDisk.range(of: Data(repeating: 0x41, count: 64)) == nil)
        #expect(try parts[0].data() == secret)
        spool.remove()
        #expect(!FileManager.default.fileExists(atPath: spool.url.path))
    }

    @Test func megabytesOfTransportPaddingAreRefusedWithoutRescanning() async throws {
        let reader = try MultipartRelatedReader(
            contentType: "multipart/related; boundary=b", temporaryFolder: try folder())
        let padding = [UInt8](repeating: 0x20, count: 64 << 10)
        let error = #expect(throws: MultipartError.self) {
            try reader.consume(Array("--b".utf8))
            for _ in 0..<128 { try reader.consume(padding) }  // 8 MiB
        }
        #expect(error?.status == 400)
        #expect(error?.message == "too much transport padding after a boundary")
    }

    @Test(arguments: [1, 2, 5])
    func paddingSplitAcrossChunksStillParses(_ chunk: Int) async throws {
        let padded = String(repeating: " ", count: 10) + "\t" + String(repeating: " ", count: 9)
        let data = Data(
            "--b\(padded)\r\nContent-Type: application/dicom\r\n\r\nxyz\r\n--b\(padded)\r\n\r\nq\r\n--b--".utf8)
        let parts = try read(data, contentType: "multipart/related; boundary=b", chunk: chunk)
        #expect(parts.count == 2)
        #expect(try parts[0].data() == Data("xyz".utf8))
        #expect(try parts[1].data() == Data("q".utf8))
    }

    @Test(arguments: [73, 256])
    func boundariesLongerThanSeventyCharactersAreAccepted(_ length: Int) async throws {
        let boundary = String(repeating: "0123456789abcdef", count: 16).prefix(length)
        let data = body(
            boundary: String(boundary), parts: [("application/dicom", first), ("application/dicom", second)])
        let parts = try read(data, contentType: "multipart/related; boundary=\(boundary)", chunk: 1000)
        #expect(parts.count == 2)
        #expect(try parts[1].data() == second)
    }

    @Test func aBoundaryOfMoreThan256CharactersIsRefused() async {
        let boundary = String(repeating: "b", count: 257)
        let error = #expect(throws: MultipartError.self) {
            try MultipartRelatedReader(
                contentType: "multipart/related; boundary=\(boundary)", temporaryFolder: URL(fileURLWithPath: "/tmp"))
        }
        #expect(error?.status == 400)
    }
}
