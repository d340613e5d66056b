import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import ArchiveServer

/// A fresh archive in a temporary folder, with instances made by DICOMCodec from the committed fixtures.
struct TestArchive {
    let folder: URL
    let service: ArchiveService
    var identity: IdentityServices
    var settings = ServerSettings()
    /// The token the test client presents unless a request carries its own: a physician's (views and stores
    /// every patient of the tenant).
    var token: String

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata")

    init(duplicates: DuplicatePolicy = .reject) async throws {
        try Part10.initialize()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("facet-server-\(UUID().uuidString)")
        (service, _) = try await ArchiveService.openEmbedded(
            dataDirectory: folder, duplicatePolicy: duplicates, environment: [:])
        settings.dataDirectory = folder.path
        settings.publicBaseURL = "https://archive.example"
        settings.maximumResults = 50
        identity = try IdentityServices.open(dataDirectory: folder, keys: service.keys)
        _ = try await identity.administration.add(tenant: "default", username: "tester", role: .physician)
        token = try await identity.tokens.issue(tenant: "default", username: "tester", role: .physician).accessToken
    }

    /// The data folder of an archive after a restart. The first one holds the folder's lock until its last
    /// reference goes, which a loaded machine may delay (its tasks end after the last request): the lock is waited
    /// for up to 30 s.
    init(reopening folder: URL) async throws {
        try Part10.initialize()
        self.folder = folder
        service = try await Self.open(folder)
        settings.dataDirectory = folder.path
        settings.publicBaseURL = "https://archive.example"
        settings.maximumResults = 50
        identity = try IdentityServices.open(dataDirectory: folder, keys: service.keys)
        token = try await identity.tokens.issue(tenant: "default", username: "tester", role: .physician).accessToken
    }

    /// Opens `folder`, waiting up to 30 s for an earlier archive of it to let go of its lock.
    static func open(_ folder: URL) async throws -> ArchiveService {
        for _ in 0..<300 {
            do {
                return try await ArchiveService.openEmbedded(dataDirectory: folder, environment: [:]).0
            } catch {
                guard "\(error)".contains("another facet process") else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return try await ArchiveService.openEmbedded(dataDirectory: folder, environment: [:]).0
    }

    /// A token for a new account of `role` (people and machines alike), for authorization tests.
    func token(for role: Role, username: String? = nil, tenant: String = "default") async throws -> String {
        let name = username ?? "user-\(role.rawValue)"
        _ = try await identity.administration.add(tenant: tenant, username: name, role: role)
        return try await identity.tokens.issue(tenant: tenant, username: name, role: role).accessToken
    }

    /// The server as a logged-in physician's client sees it.
    var app: some ApplicationProtocol {
        get async throws {
            try await buildApplication(
                settings: settings, service: service, identity: identity, logger: Logger(label: "test"),
                extra: PresentToken(token: token))
        }
    }

    /// The server with no token presented (requests carry their own, or none).
    var bareApp: some ApplicationProtocol {
        get async throws {
            try await buildApplication(
                settings: settings, service: service, identity: identity, logger: Logger(label: "test"))
        }
    }

    static func metadata(patient: String = "Doe^Jane", id: String = "P-1", date: String = "20260105")
        -> ClinicalMetadata
    {
        var metadata = ClinicalMetadata()
        metadata.patientName = patient
        metadata.patientID = id
        metadata.studyDate = date
        metadata.studyTime = "101500"
        metadata.accessionNumber = "ACC-\(id)"
        return metadata
    }

    /// A VL Photographic instance (JPEG baseline, unchanged) as Part-10 bytes.
    static func photo(_ metadata: ClinicalMetadata = metadata(), file: String = "photos/ycbcr-422.jpg", number: Int = 1)
        throws -> (bytes: Data, study: String, series: String, instance: String)
    {
        let context = InstanceContext(metadata: metadata, uids: try UIDGenerator())
        let prepared = try PhotoConverter.convert(
            try Data(contentsOf: root.appendingPathComponent(file)), context: context,
            placement: .init(seriesInstanceUID: context.uids.make(), seriesNumber: 1, instanceNumber: number))
        return (
            try Part10.encode(prepared.dataset, transferSyntax: prepared.transferSyntaxUID),
            context.studyInstanceUID, prepared.dataset.string(.seriesInstanceUID)!, prepared.sopInstanceUID
        )
    }

    static func multipart(_ parts: [Data], boundary: String = "b0undary", type: String = "application/dicom")
        -> ByteBuffer
    {
        var body = Data()
        for part in parts {
            body += Data("--\(boundary)\r\nContent-Type: \(type)\r\n\r\n".utf8) + part + Data("\r\n".utf8)
        }
        body += Data("--\(boundary)--\r\n".utf8)
        return ByteBuffer(bytes: body)
    }

    static let stowType = "multipart/related; type=\"application/dicom\"; boundary=b0undary"

    /// Every regular file under the data folder, for the at-rest checks.
    func allFiles() -> [URL] {
        let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
        return (enumerator?.allObjects as? [URL] ?? []).filter {
            (try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true
        }
    }
}

/// A response kept after the test client is gone.
struct Answer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: Data

    init(_ response: TestResponse) {
        status = response.status
        headers = response.headers
        body = Data(response.body.readableBytesView)
    }
}

func json(_ buffer: ByteBuffer) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
}

func headers(_ pairs: [(HTTPField.Name, String)]) -> HTTPFields {
    var fields = HTTPFields()
    for (name, value) in pairs { fields.append(HTTPField(name: name, value: value)) }
    return fields
}

/// The parts of a multipart/related response body (boundary from its Content-Type).
func parts(_ response: TestResponse) throws -> [(headers: String, body: Data)] {
    try parts(Answer(response))
}

func parts(_ answer: Answer) throws -> [(headers: String, body: Data)] {
    let type = try #require(answer.headers[.contentType])
    let reader = try MultipartRelatedReader(contentType: type, temporaryFolder: FileManager.default.temporaryDirectory)
    try reader.consume(answer.body)
    return try reader.finish().map { part in
        (part.headers.map { "\($0.key): \($0.value)" }.joined(separator: "\n"), try part.data())
    }
}

/// Adds `Authorization: Bearer <token>` to requests that carry none, as a logged-in client would.
struct PresentToken: RouterMiddleware {
    typealias Context = FacetRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.headers[.authorization] == nil else { return try await next(request, context) }
        var head = request.head
        head.headerFields[.authorization] = "Bearer \(token)"
        return try await next(Request(head: head, body: request.body), context)
    }
}
