import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ArchiveServer

/// The request pipeline: request id → guard → audit → metrics → route. Every `/dicomweb` and `/api` request that
/// passes the guard is audited exactly once, whatever its fate.
@Suite struct PipelineTests {
    @Test func everyRequestIsAuditedOnceAllowedMalformedOrFailed() async throws {
        let archive = try await TestArchive()
        let photo = try TestArchive.photo()
        guard case .stored = await archive.service.store(photo.bytes) else {
            throw HTTPFailure(.badRequest, "not stored")
        }
        let base = "/dicomweb/studies/\(photo.study)"
        let requests: [(uri: String, method: HTTPRequest.Method, expected: HTTPResponse.Status)] = [
            ("/dicomweb/studies?PatientID=P-1", .get, .ok),
            ("/dicomweb/studies?StudyDate=2026-99", .get, .badRequest),
            ("/dicomweb/studies/not-a-uid", .get, .badRequest),
            ("/dicomweb/studies/1.2.3.999", .get, .notFound),
            ("/dicomweb/nowhere", .get, .notFound),
            ("/api/v1/instances/1.2.3.999/originals", .get, .notFound),
            ("/api/v1/instances/not-a-uid/originals/1", .get, .notFound),
            ("/dicomweb/studies", .post, .unsupportedMediaType),
            (base + "/metadata", .get, .ok),
            ("/dicomweb", .options, .ok),
        ]
        var generator = SystemRandomNumberGenerator()
        let chosen = (0..<40).map { _ in requests[Int.random(in: 0..<requests.count, using: &generator)] }
        try await archive.app.test(.router) { client in
            for request in chosen {
                try await client.execute(uri: request.uri, method: request.method) { response in
                    #expect(response.status == request.expected, "\(request.method) \(request.uri)")
                    #expect(response.headers[RequestIDMiddleware.header]?.isEmpty == false)
                }
            }
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.count == chosen.count)
        for (line, request) in zip(lines, chosen) {
            let outcome = request.expected == .ok ? "success" : "failure-\(request.expected.code)"
            #expect(line.contains("\"outcome\":\"\(outcome)\""), "\(line)")
            // The capabilities document is open: no token is looked at, the actor is anonymous.
            let actor = request.method == .options ? "anonymous" : "default/tester"
            #expect(line.contains("\"actor\":\"\(actor)\""))
        }
    }

    @Test func aClientRequestIDIsEchoedAndAHostileOneReplaced() async throws {
        let archive = try await TestArchive()
        try await archive.app.test(.router) { client in
            try await client.execute(
                uri: "/dicomweb/studies", method: .get, headers: headers([(RequestIDMiddleware.header, "abc-123")])
            ) { response in
                #expect(response.headers[RequestIDMiddleware.header] == "abc-123")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .get,
                headers: headers([(RequestIDMiddleware.header, "<script>\(String(repeating: "x", count: 80))")])
            ) { response in
                let id = response.headers[RequestIDMiddleware.header] ?? ""
                #expect(!id.contains("<") && id.count == 36)
            }
        }
    }
}
