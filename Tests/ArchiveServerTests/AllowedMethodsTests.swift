import Archive
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ArchiveServer

/// A known path asked with the wrong method: 405 with `Allow` from the router's own routes, after authentication
/// and audited; unknown paths stay 404.
@Suite struct AllowedMethodsTests {
    @Test func aWrongMethodOnAKnownPathIs405WithTheMethodsItTakes() async throws {
        let archive = try await TestArchive()
        let study = "1.2.826.0.1.3680043.2.1143.7"
        try await archive.app.test(.router) { client in
            for (method, uri, allow) in [
                (HTTPRequest.Method.delete, "/dicomweb/studies", "GET, HEAD, POST, OPTIONS"),
                (.put, "/dicomweb/studies/\(study)/metadata", "GET, HEAD, OPTIONS"),
                (.post, "/dicomweb/studies/\(study)/series/1.2.3/instances/1.2.3.4/frames/1", "GET, HEAD, OPTIONS"),
                (.patch, "/dicomweb/studies/\(study)", "GET, HEAD, POST, DELETE, OPTIONS"),
                (.delete, "/api/v1/patients/P-1/care-team", "GET, HEAD, PUT, OPTIONS"),
                (.get, "/api/v1/users/tester/disable", "POST, OPTIONS"),
                (.post, "/api/v1/users/tester/role", "PUT, OPTIONS"),
                (.get, "/api/v1/auth/logout", "POST, OPTIONS"),
                (.head, "/api/v1/photos", "POST, OPTIONS"),
                (.post, "/health/live", "GET, HEAD, OPTIONS"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                    #expect(response.headers[.allow] == allow, "\(method) \(uri)")
                    // The usual error body and security headers: the answer took the normal road.
                    if method != .head {
                        #expect(String(buffer: response.body).contains("\"status\":405"), "\(method) \(uri)")
                    }
                    #expect(response.headers[.xContentTypeOptions] == "nosniff")
                }
            }
        }
    }

    @Test func unknownPathsStay404AndRightMethodsAreUntouched() async throws {
        let archive = try await TestArchive()
        try await archive.app.test(.router) { client in
            for (method, uri) in [
                (HTTPRequest.Method.get, "/dicomweb/nothing"), (.delete, "/dicomweb/studies/1.2.3/nothing"),
                (.get, "/api/v1/nothing"), (.put, "/nothing"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .notFound, "\(method) \(uri)")
                    #expect(response.headers[.allow] == nil)
                }
            }
            // HEAD is still answered from GET.
            try await client.execute(uri: "/dicomweb/studies", method: .head) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/dicomweb/studies", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func withoutATokenAProtectedPathIs401WhateverTheMethodAndAnOpenOneIs405() async throws {
        let archive = try await TestArchive()
        try await archive.bareApp.test(.router) { client in
            for (method, uri) in [
                (HTTPRequest.Method.delete, "/dicomweb/studies"), (.put, "/dicomweb/studies/1.2.3/metadata"),
                (.delete, "/api/v1/users"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .unauthorized, "\(method) \(uri)")
                    #expect(response.headers[.allow] == nil)
                }
            }
            for (method, uri, allow) in [
                (HTTPRequest.Method.get, "/api/v1/auth/login", "POST, OPTIONS"),
                (.get, "/api/v1/auth/token", "POST, OPTIONS"),
            ] {
                try await client.execute(uri: uri, method: method) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(uri)")
                    #expect(response.headers[.allow] == allow)
                }
            }
        }
        await archive.service.audit.flush()
        let log = try String(contentsOf: archive.folder.appendingPathComponent("audit/audit.log"), encoding: .utf8)
        #expect(log.contains("\"action\":\"GET /api/v1/auth/login\"") && log.contains("\"outcome\":\"failure-405\""))
    }

    @Test func optionsAnswersAllowAndTheCapabilitiesAndPreflightStayAsTheyWere() async throws {
        var archive = try await TestArchive()
        archive.settings.corsAllowOrigin = "http://viewer.example"
        try await archive.app.test(.router) { client in
            try await client.execute(uri: "/dicomweb/studies", method: .options) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.allow] == "GET, HEAD, POST, OPTIONS")
            }
            try await client.execute(uri: "/dicomweb", method: .options) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/vnd.sun.wadl+xml")
            }
            try await client.execute(
                uri: "/dicomweb/studies", method: .options,
                headers: headers([(.origin, "http://viewer.example"), (.accessControlRequestMethod, "GET")])
            ) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[.accessControlAllowMethods] != nil)
                #expect(response.headers[.allow] == nil)
            }
        }
    }
}
