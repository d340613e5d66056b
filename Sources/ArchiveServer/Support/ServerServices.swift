import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One clinic's archive inside a server and the services over it: its own tenant key, index, blobs and audit log.
final class TenantArchive: Sendable {
    let tenant: String
    let archive: ArchiveService
    let search: SearchService
    let retrieve: RetrieveService
    let ingest: IngestService
    /// Comparison jobs on the clinic's job queue (nil for an index without one).
    let comparisons: Comparisons?
    /// The clinic's records beside its images (nil for an index without them).
    let records: ClinicRecords?
    /// The clinic's job queue (comparisons, webhook deliveries), nil for an index without one.
    let queue: (any JobQueue)?

    init(tenant: String, archive: ArchiveService, settings: ServerSettings, urls: URLs, pool: BlockingPool) {
        self.tenant = tenant
        self.archive = archive
        search = SearchService(index: archive.index, baseURL: urls.dicomweb, maximumResults: settings.maximumResults)
        let retrieve = RetrieveService(archive: archive, pool: pool)
        self.retrieve = retrieve
        let ingest = IngestService(archive: archive, pool: pool)
        self.ingest = ingest
        records = clinicRecordStore(for: archive).map { ClinicRecords(store: $0) }
        queue = Comparisons.queue(for: archive)
        comparisons = Comparisons.queue(for: archive).map {
            Comparisons(
                archive: archive, retrieve: retrieve, queue: $0, pool: Comparisons.measurementPool, ingest: ingest)
        }
    }
}

/// The clinics one server holds, one archive per tenant (issue 9 §3): the data folder's own archive for the
/// tenant it was opened with (`default`), and `DATA/tenants/NAME/` for every other, each encrypted under its own
/// tenant key (kept in `DATA/keys` beside the shared master key) with its own index, blobs and audit log. Data of
/// one clinic is never reachable from another: a principal only ever gets their own tenant's archive, where another
/// clinic's UIDs do not exist (404). Folders found at start are opened at start (so their restart checks run then);
/// a tenant seen for the first time (an account added while the server runs, or a new tenant of the identity
/// provider) gets its folder at its first request.
final class TenantArchives: @unchecked Sendable {
    let primary: TenantArchive
    private let settings: ServerSettings
    private let urls: URLs
    private let pool: BlockingPool
    private let environment: [String: String]
    /// The PostgreSQL server every clinic's index is in (the primary's), nil for SQLite files.
    private let database: PostgresDatabase?
    private let logger: Logger
    /// Guards the three tables below, briefly (never while a folder is being opened).
    private let lock = NSLock()
    private var others: [String: TenantArchive] = [:]
    private var opening: [String: Task<TenantArchive, any Error>] = [:]
    private var failures: [String: Date] = [:]

    init(
        primary: ArchiveService, settings: ServerSettings, urls: URLs, pool: BlockingPool, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.logger = logger
        self.primary = TenantArchive(
            tenant: primary.keys.tenant, archive: primary, settings: settings, urls: urls, pool: pool)
        self.settings = settings
        self.urls = urls
        self.pool = pool
        self.environment = environment
        database = (primary.index as? PostgresStudyIndex)?.database
    }

    var dataDirectory: URL { URL(fileURLWithPath: settings.dataDirectory) }
    var tenantsDirectory: URL { dataDirectory.appendingPathComponent("tenants") }

    /// Opens every tenant folder present (at start); the first that cannot be opened stops the start.
    func openExisting() async throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tenantsDirectory.path)) ?? []
        for name in names.sorted() where Account.isValidTenant(name) {
            do {
                _ = try await openNow(name)
            } catch {
                throw SettingsError(message: "the archive of tenant \(name) cannot be opened: \(error.message)")
            }
        }
    }

    /// The archives opened so far (for counts).
    var opened: [TenantArchive] { lock.withLock { [primary] + others.values.sorted { $0.tenant < $1.tenant } } }

    /// The archive of `tenant`, opened (and created) on first use: one open, which every request
    /// of that clinic arriving meanwhile awaits (none of them holds a thread). A folder that cannot be opened is
    /// not tried again for 10 seconds (503 meanwhile).
    func archive(_ tenant: String) async throws -> TenantArchive {
        if let open = cached(tenant) { return open }
        let task: Task<TenantArchive, any Error> = try lock.withLock {
            if let failed = failures[tenant], Date().timeIntervalSince(failed) < 10 {
                throw ArchiveError(.io, "this clinic's archive could not be opened a moment ago")
            }
            if let running = opening[tenant] { return running }
            let task = Task { try await self.openNow(tenant) }
            opening[tenant] = task
            return task
        }
        return try await task.value
    }

    /// Opens a clinic's folder now (at start, or once for the requests awaiting it).
    private func openNow(_ tenant: String) async throws(ArchiveError) -> TenantArchive {
        if let open = cached(tenant) {
            lock.withLock { opening[tenant] = nil }
            return open
        }
        guard Account.isValidTenant(tenant) else {
            lock.withLock { opening[tenant] = nil }
            throw ArchiveError(.invalidInput, "not a tenant name")
        }
        let folder = tenantsDirectory.appendingPathComponent(tenant)
        do {
            let (service, report) = try await ArchiveService.openEmbedded(
                dataDirectory: folder,
                objects: try settings.objectStore(tenant: tenant, primary: false, dataDirectory: folder),
                database: database,
                duplicatePolicy: settings.duplicatePolicy,
                quarantineDays: settings.quarantineDays, keyDirectory: dataDirectory.appendingPathComponent("keys"),
                tenant: tenant, environment: environment)
            logger.info(
                "opened a clinic's archive",
                metadata: [
                    "tenant": "\(tenant)", "instances": "\(report.instances)",
                    "quarantined-blobs": "\(report.quarantinedBlobs)",
                    "quarantined-rows": "\(report.quarantinedRows.joined(separator: ","))",
                    "temporary-files": "\(report.removedTemporaryFiles)",
                ])
            let opened = TenantArchive(tenant: tenant, archive: service, settings: settings, urls: urls, pool: pool)
            lock.withLock {
                others[tenant] = opened
                opening[tenant] = nil
                failures[tenant] = nil
            }
            return opened
        } catch {
            logger.error(
                "a clinic's archive cannot be opened", metadata: ["tenant": "\(tenant)", "reason": "\(error.message)"])
            lock.withLock {
                opening[tenant] = nil
                failures[tenant] = Date()
            }
            throw error
        }
    }

    /// The archive of `tenant` when it is open already.
    func cached(_ tenant: String) -> TenantArchive? {
        tenant == primary.tenant ? primary : lock.withLock { others[tenant] }
    }
}

/// What every route shares: the settings, the clinics' archives, the blocking pool, the render cache, metrics and
/// the URLs Facet builds for clients.
struct ServerServices: Sendable {
    let settings: ServerSettings
    let archives: TenantArchives
    let pool: BlockingPool
    /// Shared by the tenants; its keys name the tenant, so no clinic reaches (or times) another's renders.
    let renders: RenderCache
    let metrics: Metrics
    let logger: Logger
    let urls: URLs
    let identity: IdentityServices
    /// Rung when a comparison is asked here: this process's idle workers take it at once.
    let jobs = Doorbell()
    /// Rung when a webhook event is queued here.
    let webhookBell = Doorbell()
    let webhooks: Webhooks.Settings?

    init(
        settings: ServerSettings, archive: ArchiveService, identity: IdentityServices, metrics: Metrics,
        logger: Logger
    ) {
        self.settings = settings
        self.identity = identity
        self.metrics = metrics
        self.logger = logger
        webhooks = try? settings.webhooks()
        urls = URLs(base: settings.baseURL)
        pool = BlockingPool(threads: settings.blockingThreads, queueLimit: settings.blockingQueue)
        archives = TenantArchives(primary: archive, settings: settings, urls: urls, pool: pool, logger: logger)
        renders = RenderCache()
    }

    /// The archive of the request's principal (set by the authentication middleware): the only one its routes see.
    func tenant(_ context: FacetRequestContext) throws -> TenantArchive {
        guard let tenant = context.tenant else { throw ArchiveError(.invalidToken, "a bearer token is required") }
        return tenant
    }

    /// Queues the webhook event of a request that succeeded (when a receiver is configured and subscribes to it).
    /// A queue that cannot be written is logged: the request's own outcome stands.
    func publish(_ note: AuditNote) async {
        guard let webhooks, let name = Webhooks.event(forAction: note.action), let tenant = note.tenant,
            let queue = tenant.queue
        else { return }
        let (records, named) = Webhooks.identifiers(in: note.action)
        var events: [Webhooks.Event] = []
        if note.studyUID == nil && !note.instanceUIDs.isEmpty {
            // Photos of several patients (an export): one event per patient, each with that patient's photos only.
            let catalog = tenant.archive.index.catalog()
            var byPatient: [String: [String]] = [:]
            for uid in note.instanceUIDs {
                guard let record = catalog.instances[uid],
                    let patient = tenant.archive.patientKey(forStudy: record.studyInstanceUID)
                else { continue }
                byPatient[patient, default: []].append(uid)
            }
            events = byPatient.sorted { $0.key < $1.key }.map { patient, uids in
                Webhooks.Event(name: name, tenant: tenant.tenant, patient: patient, instances: uids, records: records)
            }
        } else {
            events = [
                Webhooks.Event(
                    name: name, tenant: tenant.tenant,
                    patient: note.studyUID.flatMap(tenant.archive.patientKey(forStudy:)) ?? named,
                    study: note.studyUID, instances: note.instanceUIDs, records: records)
            ]
        }
        do {
            for event in events { try await Webhooks.publish(event, settings: webhooks, queue: queue) }
            webhookBell.ring()
        } catch {
            logger.error(
                "a webhook event could not be queued", metadata: ["event": "\(name)", "reason": "\(error.message)"])
        }
    }

    /// Who the audit log names for this request.
    func caller(_ context: FacetRequestContext) -> IngestService.Caller {
        IngestService.Caller(actor: context.audit.actor, address: context.audit.address, request: context.requestID)
    }

    /// Before anything is looked up: a role that may never do `action` gets 403, whether or not the resource
    /// exists, so it learns nothing of what the archive holds.
    func preauthorize(_ context: FacetRequestContext, _ action: AccessAction) throws {
        let principal = try Self.principal(context)
        try enforce(AccessPolicy().decideRole(principal, action, tenant: try tenant(context).tenant), context)
    }

    /// Asks the access policy whether the request's principal may do `action` (on the patient of `studyUID`, when
    /// one is named). Reads under a break-the-glass grant are marked as emergency access in the audit event.
    func authorize(_ context: FacetRequestContext, _ action: AccessAction, study studyUID: String? = nil)
        async throws
    {
        let tenant = try tenant(context)
        var patient: PatientKey?
        if let studyUID, let study = tenant.archive.index.catalog().studies[studyUID] {
            patient = identity.patient(of: study, tenant: tenant.tenant)
        }
        try await authorize(context, action, patient: patient)
    }

    /// Asks the access policy whether the request's principal may do `action` on `patient` (keyed).
    func authorize(_ context: FacetRequestContext, _ action: AccessAction, patient: PatientKey?) async throws {
        let principal = try Self.principal(context)
        let tenant = try tenant(context)
        let resource = try await identity.access.resource(tenant: tenant.tenant, patient: patient, for: principal)
        try enforce(identity.access.policy.decide(principal, action, resource), context)
        if resource.underBreakGlass && !resource.inCareTeam { context.audit.emergency = true }
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

    /// A whole-number query parameter within `range` (`default` when absent), or 400 naming it.
    static func number(_ text: String?, _ name: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw HTTPFailure(
                .badRequest, "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
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
