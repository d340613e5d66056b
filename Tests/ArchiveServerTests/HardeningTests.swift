import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Archive
@testable import ArchiveServer

/// The request guard, frame lists, render bounds and the blocking pool (issue: hardening). The same cases run
/// against a live server in conformance/test_hardening.py.
@Suite struct HardeningTests {
    static let host = HTTPField.Name("Host")!

    @Test func aForeignHostNameIsMisdirected() async throws {
        let archive = try await TestArchive()
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([(Self.host, "evil.example:8042")])
            ) { response in
                #expect(response.status.code == 421)
            }
            // The public base URL's host, localhost and the bound address pass.
            for name in ["archive.example", "localhost:8042", "127.0.0.1:8042", "LOCALHOST."] {
                try await client.execute(
                    uri: "/dicomweb/studies", method: .get, headers: headers([(Self.host, name)])
                ) { response in
                    #expect(response.status == .ok, "\(name)")
                }
            }
        }
    }

    @Test func corsIsOffByDefaultAndForeignOriginsCannotWrite() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([(.origin, "http://evil.example")])
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[.crossOriginResourcePolicy] == "same-origin")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .options,
                headers: headers([(.origin, "http://evil.example"), (.accessControlRequestMethod, "POST")])
            ) { response in
                #expect(response.headers[.accessControlAllowOrigin] == nil)
                #expect(response.headers[.accessControlAllowMethods] == nil)
            }
            for origin in ["http://evil.example", "null"] {
                try await client.execute(
                    uri: "/dicomweb/studies", method: .post,
                    headers: headers([(.contentType, TestArchive.stowType), (.origin, origin)]),
                    body: TestArchive.multipart([photo.bytes])
                ) { response in
                    #expect(response.status == .forbidden)
                }
            }
            #expect(archive.service.index.catalog().instances.isEmpty)
            // The server's own origin (its public base URL) may store.
            try await client.execute(
                uri: "/dicomweb/studies", method: .post,
                headers: headers([(.contentType, TestArchive.stowType), (.origin, "https://archive.example")]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func aDeclaredBodyOverTheLimitIsRefusedUnread() async throws {
        var archive = try await TestArchive()
        archive.settings.maximumBodyMiB = 1
        try await archive.app.test(.router) { client in
            for length in ["1099511627776", "99999999999999999999999"] {
                try await client.execute(
                    uri: "/dicomweb/studies", method: .post,
                    headers: headers([(.contentType, TestArchive.stowType), (.contentLength, length)])
                ) { response in
                    #expect(response.status == .contentTooLarge)
                }
            }
        }
    }

    @Test func frameListsAreDeduplicatedAndHugeNumbersAreNotFound() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        let base = "/dicomweb/studies/\(photo.study)/series/\(photo.series)/instances/\(photo.instance)"
        let jpeg = headers([(.accept, "multipart/related; type=\"image/jpeg\"")])
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in #expect(response.status == .ok) }
            for number in ["4294967297", "4294967296", "18446744073709551617", "2"] {
                try await client.execute(uri: base + "/frames/\(number)", method: .get, headers: jpeg) { response in
                    #expect(response.status == .notFound, "\(number)")
                }
                try await client.execute(
                    uri: base + "/frames/\(number)/rendered", method: .get, headers: headers([(.accept, "image/png")])
                ) { response in
                    #expect(response.status == .notFound, "\(number)")
                }
            }
            for malformed in ["x", "1,,2", "-1", "1.5"] {
                try await client.execute(uri: base + "/frames/\(malformed)", method: .get, headers: jpeg) { response in
                    #expect(response.status == .badRequest, "\(malformed)")
                }
            }
            let repeated = Array(repeating: "1", count: 1000).joined(separator: ",")
            try await client.execute(uri: base + "/frames/\(repeated)", method: .get, headers: jpeg) { response in
                #expect(response.status == .ok)
                let body = String(decoding: response.body.readableBytesView, as: UTF8.self)
                #expect(body.components(separatedBy: "Content-Type: image/jpeg").count - 1 == 1)
            }
        }
    }

    @Test func viewportsNeverUpscale() async {
        let big = RetrieveService.Viewport(width: 8192, height: 8192)
        #expect(RetrieveService.clamped(big, rows: 256, columns: 512) == .init(width: 512, height: 512))
        // Smaller than the image: unchanged.
        let small = RetrieveService.Viewport(width: 100, height: 50)
        #expect(RetrieveService.clamped(small, rows: 256, columns: 512) == small)
        // A region is the source: 8192 asked for a 64 x 32 region gives 64 x 64 at most.
        let region = RetrieveService.Viewport(width: 8192, height: 8192, region: [0, 0, 64, 32])
        #expect(RetrieveService.clamped(region, rows: 256, columns: 512)?.width == 64)
    }

    @Test func identicalRendersShareOneJobAndTheCacheIsBoundedByBytes() async throws {
        let cache = RenderCache(capacityBytes: 8 << 20)
        let calls = Counter()
        try await withThrowingTaskGroup(of: Data.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await cache.value("same") {
                        calls.add()
                        try await Task.sleep(for: .milliseconds(100))
                        return Data(count: 1000)
                    }
                }
            }
            for try await data in group { #expect(data.count == 1000) }
        }
        #expect(calls.value == 1)
        for index in 0..<100 {
            _ = try await cache.value("key-\(index)") { Data(count: 512 << 10) }
        }
        #expect(cache.size <= 8 << 20)
    }

    @Test func aFullBlockingPoolRefusesAtOnce() async throws {
        let pool = BlockingPool(threads: 1, queueLimit: 1)
        let release = DispatchSemaphore(value: 0)
        let running = Task { try await pool.run { release.wait() } }
        while pool.waiting > 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        let queued = Task { try await pool.run { 1 } }
        while pool.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        await #expect(throws: BlockingPool.Busy.self) { try await pool.run { 2 } }
        release.signal()
        try await running.value
        #expect(try await queued.value == 1)
    }

    @Test func anUploadDecodingToTooManyPixelsIsRefusedBeforeDecoding() async throws {
        let archive = try await TestArchive()
        // A PNG header claiming 20000 x 20000 pixels (400 MP); the rest never gets read.
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]) + Data("IHDR".utf8)
        png += Data([0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20, 8, 2, 0, 0, 0]) + Data(count: 64)
        var body = Data("--b0undary\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n".utf8)
        body += Data("Content-Type: image/png\r\n\r\n".utf8) + png + Data("\r\n--b0undary--\r\n".utf8)
        let upload = ByteBuffer(bytes: body)
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/api/v1/photos", method: .post,
                headers: headers([(.contentType, "multipart/form-data; boundary=b0undary")]),
                body: upload
            ) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
        #expect(archive.service.index.catalog().instances.isEmpty)
    }

    @Test func aStoreWhoseIntentCannotBeAuditedStoresNothing() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        try #require(archive.service.audit as? AuditLog).writeLine = { _, _ in false }
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in
                #expect(response.status != .ok)
                #expect(!String(buffer: response.body).contains("00081199"))
            }
        }
        #expect(archive.service.index.catalog().instances.isEmpty)
    }

    @Test func aStoreWhoseOutcomeCannotBeAuditedStillAnswersTheTruth() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        // The intent is written; the outcome line (action "STOW store") fails.
        try #require(archive.service.audit as? AuditLog).writeLine = { descriptor, line in
            String(decoding: line, as: UTF8.self).contains("\"action\":\"STOW store\"")
                ? false : writeAll(descriptor, line)
        }
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .post, headers: headers([(.contentType, TestArchive.stowType)]),
                body: TestArchive.multipart([photo.bytes])
            ) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.warning]?.contains("audit") == true)
            }
        }
        #expect(archive.service.index.instance(photo.instance) != nil)
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("STOW store (intent)") && log.contains(photo.instance))
    }

    @Test func nonLoopbackAddressesAreToldApart() async {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"] {
            #expect(ServerSettings.isLoopback(host), "\(host)")
        }
        for host in ["0.0.0.0", "192.168.1.10", "::", "example.com", "127.0.0.1.example.com"] {
            #expect(!ServerSettings.isLoopback(host), "\(host)")
        }
    }
}

/// A thread-safe count for tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
