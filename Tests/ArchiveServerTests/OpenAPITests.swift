import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import ArchiveServer

/// The OpenAPI document of `/api/v1` (issue 12 §1) is served without a token and names exactly the routes the
/// router has under `/api/v1`, method by method (schemathesis then checks the answers in `make test`).
@Suite struct OpenAPITests {
    @Test func theDocumentIsServedAndMatchesTheRouter() async throws {
        let archive = try await TestArchive()
        let document = try await archive.bareApp.test(.router) { client in
            try await client.execute(uri: "/api/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok && response.headers[.contentType] == "application/json")
                return try #require(try json(response.body) as? [String: Any])
            }
        }
        #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let services = ServerServices(
            settings: archive.settings, archive: archive.service, identity: archive.identity, metrics: Metrics(),
            logger: Logger(label: "test"))
        let router = Router(context: FacetRequestContext.self)
        addRoutes(to: router, services: services)
        var routed: Set<String> = []
        for route in router.routes where route.path.description.hasPrefix("/api/v1") {
            // `{name}` in OpenAPI for the router's `:name` (and its own `{name}` rendering).
            let path = route.path.description.split(separator: "/", omittingEmptySubsequences: false).map { part in
                part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
            }.joined(separator: "/")
            routed.insert("\(route.method.rawValue) \(path)")
        }
        #expect(routed.count > 50)
        #expect(
            routed.subtracting(documented).isEmpty,
            "routes missing from the document: \(routed.subtracting(documented).sorted())")
        #expect(
            documented.subtracting(routed).isEmpty,
            "documented but not routed: \(documented.subtracting(routed).sorted())")
    }
}
