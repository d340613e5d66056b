import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What every route shares: the settings, the archive's services, the blocking pool, the render cache, metrics and
/// the URLs Facet builds for clients.
struct ServerServices: Sendable {
    let settings: ServerSettings
    let archive: ArchiveService
    let search: SearchService
    let retrieve: RetrieveService
    let ingest: IngestService
    let pool: BlockingPool
    /// Token checks (a database read per request) get threads of their own, so that searches answer while renders
    /// and stores fill the main pool.
    let tokenPool = BlockingPool(threads: 2, queueLimit: 4096)
    let renders: RenderCache
    let metrics: Metrics
    let logger: Logger
    let urls: URLs
    let identity: IdentityServices

    init(
        settings: ServerSettings, archive: ArchiveService, identity: IdentityServices, metrics: Metrics,
        logger: Logger
    ) {
        self.settings = settings
        self.archive = archive
        self.identity = identity
        self.metrics = metrics
        self.logger = logger
        urls = URLs(base: settings.baseURL)
        pool = BlockingPool(threads: settings.blockingThreads, queueLimit: settings.blockingQueue)
        search = SearchService(
            index: archive.index, baseURL: urls.dicomweb, maximumResults: settings.maximumResults)
        retrieve = RetrieveService(archive: archive, pool: pool)
        ingest = IngestService(archive: archive, pool: pool)
        renders = RenderCache()
    }

    /// Who the audit log names for this request.
    func caller(_ context: FacetRequestContext) -> IngestService.Caller {
        IngestService.Caller(actor: context.audit.actor, address: context.audit.address, request: context.requestID)
    }

    /// Before anything is looked up: another tenant's principal gets 404 and a role that may never do `action` gets
    /// 403, whether or not the resource exists, so neither learns what the archive holds.
    func preauthorize(_ context: FacetRequestContext, _ action: AccessAction) throws {
        let principal = try Self.principal(context)
        try enforce(AccessPolicy().decideRole(principal, action, tenant: archive.keys.tenant), context)
    }

    /// Asks the access policy whether the request's principal may do `action` (on the patient of `studyUID`, when
    /// one is named).
    func authorize(_ context: FacetRequestContext, _ action: AccessAction, study studyUID: String? = nil) throws {
        let principal = try Self.principal(context)
        var patient: PatientKey?
        if let studyUID, let study = archive.index.catalog().studies[studyUID] {
            patient = identity.patient(of: study)
        }
        try enforce(
            try identity.access.decide(principal, action, tenant: archive.keys.tenant, patient: patient), context)
    }

    static func principal(_ context: FacetRequestContext) throws -> Principal {
        guard let principal = context.principal else {
            throw ArchiveError(.invalidToken, "a bearer token is required")
        }
        return principal
    }

    /// A decision as an answer: 403 with the reason within the tenant, 404 for another tenant's; the refusal is
    /// recorded for the audit event.
    func enforce(_ decision: AccessDecision, _ context: FacetRequestContext) throws {
        switch decision {
        case .allow:
            return
        case .deny(let reason):
            context.audit.refusal = reason
            throw HTTPFailure(.forbidden, "not allowed: \(reason)")
        case .notFound:
            context.audit.refusal = "another tenant"
            throw HTTPFailure(.notFound, "no such resource")
        }
    }
}

/// The URLs Facet gives clients: RetrieveURL, BulkDataURI bases, Content-Location, Location, originals.
struct URLs: Sendable {
    /// The public base URL, without a trailing slash.
    let base: String

    var dicomweb: String { base + "/dicomweb" }

    func study(_ uid: String) -> String { "\(dicomweb)/studies/\(uid)" }

    func instance(_ record: InstanceRecord) -> String {
        "\(dicomweb)/studies/\(record.studyInstanceUID)/series/\(record.seriesInstanceUID)/instances/\(record.sopInstanceUID)"
    }

    func originals(_ sopInstanceUID: String) -> String { "\(base)/api/v1/instances/\(sopInstanceUID)/originals" }

    /// A `Warning` header value of PS3.18 (RFC 7234 form), quotes in the text replaced.
    func warning(_ text: String) -> String {
        "299 \(dicomweb): \"\(text.replacingOccurrences(of: "\"", with: "'"))\""
    }
}

/// Request parsing every route shares.
enum RequestParts {
    /// A UID from the URL, or 400.
    static func uid(_ context: FacetRequestContext, _ name: String) throws -> String {
        guard let text = context.parameters.get(name), UID.isValid(text) else {
            throw HTTPFailure(.badRequest, "a UID in the URL is not a valid UID")
        }
        return text
    }

    /// Query parameters, percent-decoded (`+` is a space), in order; malformed encodings are refused.
    static func queryItems(_ request: Request) throws -> [(name: String, value: String)] {
        guard let raw = request.uri.query, !raw.isEmpty else { return [] }
        var items: [(String, String)] = []
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) throws -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                guard let decoded = spaced.removingPercentEncoding else {
                    throw HTTPFailure(.badRequest, "a query parameter is not valid percent-encoded UTF-8")
                }
                return decoded
            }
            // Repeated includefield parameters and comma lists mean the same.
            items.append((try decode(parts[0]), parts.count > 1 ? try decode(parts[1]) : ""))
        }
        return items
    }

    static func accept(_ request: Request) -> [AcceptEntry] {
        Negotiation.entries(request.headers[values: .accept])
    }

    static var varyAccept: HTTPFields {
        var headers = HTTPFields()
        headers[.vary] = "Accept"
        return headers
    }
}
