import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle

/// The request context: Hummingbird's core storage, the client's address, the request id and the facts the
/// audit event of this request will carry.
public struct FacetRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// Set by the request id middleware.
    public var requestID = ""
    /// Who is asking, set by the authentication middleware (nil on the open paths).
    public var principal: Principal?
    /// The token the principal came with (for logout).
    var bearerToken: String?
    /// The principal's clinic: the only archive the routes of this request see.
    var tenant: TenantArchive?
    /// Filled in by the routes (what they touched), written by the audit middleware.
    let audit = AuditNote()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        audit.address = remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Builds the Facet application. Every request takes the same road, one middleware type each: request id → the
/// request guard (Host, declared body size, CORS preflight, browser origins, security headers) → audit (which
/// also turns errors into answers) → authentication → metrics → the route, which asks the access policy. Routes
/// are one type per transaction: QIDO-RS, STOW-RS, WADO-RS, rendered and thumbnails, capabilities, clinic uploads,
/// originals, logins, care teams, accounts; health and metrics beside them; a known path asked with another method
/// is 405. `extra` middleware runs just before authentication (tests use it to present a token).
public func buildApplication(
    settings: ServerSettings, service: ArchiveService, identity: IdentityServices, logger: Logger
) async throws -> some ApplicationProtocol {
    try await buildApplication(settings: settings, service: service, identity: identity, logger: logger, extra: nil)
}

func buildApplication(
    settings: ServerSettings, service: ArchiveService, identity: IdentityServices, logger: Logger,
    extra: (any MiddlewareProtocol<Request, Response, FacetRequestContext>)?
) async throws -> some ApplicationProtocol {
    let metrics = Metrics()
    let services = ServerServices(
        settings: settings, archive: service, identity: identity, metrics: metrics, logger: logger)
    try await services.archives.openExisting()
    let router = Router(context: FacetRequestContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: RequestGuardMiddleware(settings: settings))
    router.add(middleware: AuditMiddleware(services: services))
    if let extra { router.add(middleware: extra) }
    router.add(middleware: AuthenticationMiddleware(services: services))
    router.add(middleware: MetricsMiddleware(services: services))
    addRoutes(to: router, services: services)
    FHIRRoutes(services: services).add(to: router)
    router.get("/health/live") { _, _ in Responses.text("{\"status\":\"live\"}", contentType: "application/json") }
    router.get("/health/ready") { _, _ in
        // Ready when the index answers and the blob store's folder is writable.
        // No count: it is open without a token. The details remind of keys in use for a year (dates only).
        let writable = FileManager.default.isWritableFile(atPath: service.temporaryDirectory.path)
        let reminders = KeyRotation.reminders(dataDirectory: services.archives.dataDirectory)
        let details =
            reminders.isEmpty
            ? ""
            : ",\"details\":{\"keyRotation\":\"\(reminders.count) key\(reminders.count == 1 ? "" : "s") in use for over a year: "
                + "rotate (facet keys rotate); the start-up log names them\"}"
        return Responses.text(
            "{\"status\":\"\(writable ? "ready" : "not-ready")\"\(details)}",
            status: writable ? .ok : .serviceUnavailable, contentType: "application/json")
    }
    router.get("/metrics") { _, _ in
        Responses.text(
            metrics.render(
                instances: services.archives.opened.reduce(0) { $0 + $1.archive.index.catalog().instances.count }),
            contentType: "text/plain; version=0.0.4")
    }
    // Last: it reads the routes above.
    AllowedMethods.add(to: router)
    return Application(
        router: router, server: try serverBuilder(settings),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Facet"),
        services: [
            ComparisonWorker(
                archives: services.archives, logger: logger, doorbell: services.jobs, webhooks: services.webhooks,
                webhookBell: services.webhookBell),
            TrashSweeper(archives: services.archives, logger: logger),
        ]
            + (try auditForwarder(settings, services, logger).map { [$0] } ?? [])
            + (services.webhooks.map {
                [
                    WebhookWorker(
                        archives: services.archives, settings: $0, logger: logger, doorbell: services.webhookBell)
                ]
            } ?? []),
        logger: logger)
}

/// The routes of DICOMweb, FHIR and the clinic API (health and metrics are added beside them).
func addRoutes(to router: Router<FacetRequestContext>, services: ServerServices) {
    AuthRoutes(services: services).add(to: router)
    QIDORoutes(services: services).add(to: router)
    STOWRoutes(services: services).add(to: router)
    WADORoutes(services: services).add(to: router)
    RenderedRoutes(services: services).add(to: router)
    CapabilitiesRoutes().add(to: router)
    DeleteRoutes(services: services).add(to: router)
    TrashRoutes(services: services).add(to: router)
    UploadRoutes(services: services).add(to: router)
    OriginalsRoutes(services: services).add(to: router)
    PatientAccessRoutes(services: services).add(to: router)
    UserRoutes(services: services).add(to: router)
    ComparisonRoutes(services: services).add(to: router)
    PatientRoutes(services: services).add(to: router)
    RecordRoutes(services: services).add(to: router)
    ConsentRoutes(services: services).add(to: router)
    ExportRoutes(services: services).add(to: router)
    ShareRoutes(services: services).add(to: router)
    AuditRoutes(services: services).add(to: router)
    RetentionRoutes(services: services).add(to: router)
    DisposalRoutes(services: services).add(to: router)
    OpenAPIRoutes().add(to: router)
}

/// The syslog forwarder of the audit trail, when `syslog-url` is set.
func auditForwarder(_ settings: ServerSettings, _ services: ServerServices, _ logger: Logger) throws -> (any Service)? {
    guard let (host, port) = try settings.syslog() else { return nil }
    return AuditForwarder(
        archives: services.archives, sender: try SyslogSender(host: host, port: port, caFile: settings.syslogCA),
        stateFile: URL(fileURLWithPath: settings.dataDirectory).appendingPathComponent("audit-forward.json"),
        logger: logger)
}

/// Plain HTTP/1.1, or HTTPS with the configured certificate: TLS 1.3 only unless `tls-min-version: 1.2`.
func serverBuilder(_ settings: ServerSettings) throws -> HTTPServerBuilder {
    guard let certificate = settings.tlsCertificate, let key = settings.tlsKey else { return .http1() }
    let certificates: [NIOSSLCertificate]
    let privateKey: NIOSSLPrivateKey
    do {
        certificates = try NIOSSLCertificate.fromPEMFile(certificate)
        privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
    } catch {
        throw SettingsError(message: "the TLS certificate or key cannot be read (PEM files expected)")
    }
    guard !certificates.isEmpty else { throw SettingsError(message: "the TLS certificate file holds no certificate") }
    var tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(privateKey))
    tls.minimumTLSVersion = settings.tlsMinimumVersion == "1.2" ? .tlsv12 : .tlsv13
    return try .tls(.http1(), tlsConfiguration: tls)
}

/// Prometheus counters: requests by route family and status class, stored and failed instances, bytes served.
final class Metrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var durations: [String: Double] = [:]
    private var counters: [String: Int] = [:]

    func request(_ family: String, status: Int, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        requests["family=\"\(family)\",code=\"\(status / 100)xx\"", default: 0] += 1
        durations[family, default: 0] += seconds
    }

    func add(_ name: String, _ value: Int) {
        lock.lock()
        defer { lock.unlock() }
        counters[name, default: 0] += value
    }

    func render(instances: Int) -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = "# HELP facet_http_requests_total HTTP requests by route family and status class.\n"
        out += "# TYPE facet_http_requests_total counter\n"
        for (labels, count) in requests.sorted(by: { $0.key < $1.key }) {
            out += "facet_http_requests_total{\(labels)} \(count)\n"
        }
        out += "# HELP facet_http_request_seconds_total Time spent answering, by route family.\n"
        out += "# TYPE facet_http_request_seconds_total counter\n"
        for (family, seconds) in durations.sorted(by: { $0.key < $1.key }) {
            out += "facet_http_request_seconds_total{family=\"\(family)\"} \(seconds)\n"
        }
        for (name, value) in counters.sorted(by: { $0.key < $1.key }) {
            out += "# TYPE facet_\(name) counter\nfacet_\(name) \(value)\n"
        }
        out += "# HELP facet_instances Instances in the index.\n# TYPE facet_instances gauge\n"
        out += "facet_instances \(instances)\n"
        return out
    }
}
