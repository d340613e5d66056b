import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's core storage plus the client's address for the audit log.
public struct FacetRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Builds the Facet application: the request guard (Host, body size, CORS, browser origins, security headers)
/// first, then health and metrics on the router, DICOMweb under `/dicomweb` and the clinic upload API under
/// `/api/v1` in `DICOMwebMiddleware`.
public func buildApplication(settings: ServerSettings, service: ArchiveService, logger: Logger)
    -> some ApplicationProtocol
{
    let metrics = Metrics()
    let pool = BlockingPool(threads: settings.blockingThreads, queueLimit: settings.blockingQueue)
    let router = Router(context: FacetRequestContext.self)
    router.add(middleware: RequestGuardMiddleware(settings: settings))
    router.add(
        middleware: DICOMwebMiddleware(
            settings: settings, service: service, metrics: metrics, logger: logger, pool: pool))
    router.get("/health/live") { _, _ in Responses.text("{\"status\":\"live\"}", contentType: "application/json") }
    router.get("/health/ready") { _, _ in
        // Ready when the index answers and the blob store's folder is writable.
        let writable = FileManager.default.isWritableFile(atPath: service.temporaryDirectory.path)
        let instances = service.index.catalog().instances.count
        return Responses.text(
            "{\"status\":\"\(writable ? "ready" : "not-ready")\",\"instances\":\(instances)}",
            status: writable ? .ok : .serviceUnavailable, contentType: "application/json")
    }
    router.get("/metrics") { _, _ in
        Responses.text(
            metrics.render(instances: service.index.catalog().instances.count),
            contentType: "text/plain; version=0.0.4")
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Facet"),
        logger: logger)
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
