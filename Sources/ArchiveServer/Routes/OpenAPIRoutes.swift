import Foundation
import HTTPTypes
import Hummingbird

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the clinic API (issue 12 §1), open without a token (it
/// describes, it holds nothing of a clinic). A test keeps it and the router's `/api/v1` routes the same, and
/// schemathesis runs against it in `make test`.
struct OpenAPIRoutes {
    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/openapi.json") { _, context in
            context.audit.action = "OpenAPI document read"
            guard let document = Resources.openAPI else {
                throw HTTPFailure(.notFound, "the OpenAPI document is not installed beside this executable")
            }
            var headers = HTTPFields()
            headers[.cacheControl] = "no-cache"
            return Responses.bytes(document, contentType: "application/json", extra: headers)
        }
    }
}

/// Files SwiftPM copies beside the executable (`Facet_ArchiveServer.resources/`), found without `Bundle.module`
/// (which stops the process when the folder is missing: an executable copied elsewhere answers 404 instead).
enum Resources {
    static let folderName = "Facet_ArchiveServer.resources"

    static func url(_ name: String) -> URL? {
        var folders: [URL] = []
        if let override = ProcessInfo.processInfo.environment["FACET_RESOURCES"] {
            folders.append(URL(fileURLWithPath: override))
        }
        folders.append(Bundle.main.bundleURL.appendingPathComponent(folderName))
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            folders.append(executable.deletingLastPathComponent().appendingPathComponent(folderName))
        }
        return folders.map { $0.appendingPathComponent(name) }.first {
            FileManager.default.fileExists(atPath: $0.path)
        }
    }

    static let openAPI: Data? = url("openapi.json").flatMap { try? Data(contentsOf: $0) }
}
