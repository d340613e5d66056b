import Foundation
import HTTPTypes
import Hummingbird

/// The first step of every request: the `Host` check against DNS rebinding (421), a declared body larger than
/// the limit refused before it is read (413), CORS preflights (which carry no credentials), state-changing
/// requests from foreign browser origins refused (403), and the security headers of every answer.
struct RequestGuardMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    let hosts: Set<String>
    let corsOrigins: Set<String>
    let anyOrigin: Bool
    let port: Int
    let publicOrigin: String?
    let maximumBodyBytes: Int
    let tls: Bool
    /// Proxies whose `X-Forwarded-For` names the client (only with `trust-proxy-tls`).
    let trustedProxies: Set<String>

    init(settings: ServerSettings) {
        hosts = settings.acceptedHosts
        let origins = settings.corsOrigins
        anyOrigin = origins.contains("*")
        corsOrigins = Set(origins.filter { $0 != "*" })
        port = settings.port
        publicOrigin = settings.publicBaseURL.flatMap { Self.origin(of: $0) }
        maximumBodyBytes = settings.maximumBodyMiB << 20
        tls = settings.usesTLS
        trustedProxies = settings.trustProxyTLS ? Set(settings.trustedProxies) : []
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    static let host = HTTPField.Name("Host")!
    static let misdirected = HTTPResponse.Status(code: 421, reasonPhrase: "Misdirected Request")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // A browser tricked by DNS rebinding sends the attacker's name: only names this server is known by pass.
        if let authority = request.headers[Self.host] ?? request.head.authority,
            !hosts.contains(ServerSettings.bareHost(authority))
        {
            return secured(
                Responses.failure(HTTPFailure(Self.misdirected, "this server does not answer for that host name")),
                origin: nil)
        }
        // One spelling per resource: empty, `.` and `..` segments (which the router would skip over, past the
        // checks that look at the path) and overlong paths are refused.
        let path = request.uri.path
        if path.utf8.count > 8192 || !path.hasPrefix("/") || path.contains("//")
            || path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." })
        {
            return secured(
                Responses.failure(HTTPFailure(.badRequest, "the path is not in canonical form")), origin: nil)
        }
        if let declared = request.headers[.contentLength] {
            // Digits beyond Int are larger than any limit.
            let length = Int(declared) ?? (declared.allSatisfy(\.isNumber) ? Int.max : -1)
            guard length >= 0 else {
                return secured(
                    Responses.failure(HTTPFailure(.badRequest, "Content-Length is not a number")), origin: nil)
            }
            if length > maximumBodyBytes {
                var response = Responses.failure(
                    HTTPFailure(.contentTooLarge, "request body exceeds \(maximumBodyBytes >> 20) MiB"))
                // The body is never read: close the connection rather than wait for it.
                response.headers[.connection] = "close"
                return secured(response, origin: nil)
            }
        }
        // Behind a trusted proxy, the client is the last address it appended (earlier ones the client could forge).
        if let proxy = context.remoteAddress?.ipAddress, trustedProxies.contains(proxy),
            let forwarded = request.headers[Self.forwardedFor],
            let client = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !client.isEmpty,
            client.utf8.count <= 64
        {
            context.audit.address = client
        }
        let origin = request.headers[.origin]
        let allowed = origin.map(originAllowed) ?? false
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            var headers = HTTPFields()
            if allowed {
                headers[.accessControlAllowMethods] = "GET, HEAD, POST, OPTIONS"
                headers[.accessControlAllowHeaders] = "Authorization, Accept, Content-Type"
                headers[.accessControlMaxAge] = "600"
            }
            return secured(Response(status: .noContent, headers: headers), origin: allowed ? origin : nil)
        }
        let safe = request.method == .get || request.method == .head || request.method == .options
        if !safe, origin != nil, !allowed {
            // A form or script on another site must not store into the archive (cross-site request forgery).
            return secured(
                Responses.failure(HTTPFailure(.forbidden, "requests from this browser origin are not allowed")),
                origin: nil)
        }
        let response = try await next(request, context)
        return secured(response, origin: allowed ? origin : nil)
    }

    /// Same origin (a name this server answers to, on its port or the public base URL), or a configured one.
    func originAllowed(_ origin: String) -> Bool {
        let normalised = origin.lowercased()
        if anyOrigin || corsOrigins.contains(normalised) { return true }
        if let publicOrigin, normalised == publicOrigin { return true }
        guard let url = URL(string: normalised), let scheme = url.scheme, let host = url.host else { return false }
        let originPort = url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : -1)
        return hosts.contains(ServerSettings.bareHost(host)) && originPort == port
    }

    /// `scheme://host[:port]` of a URL, lower case.
    static func origin(of url: String) -> String? {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host else {
            return nil
        }
        let name = host.contains(":") ? "[\(host)]" : host
        return parsed.port.map { "\(scheme)://\(name.lowercased()):\($0)" } ?? "\(scheme)://\(name.lowercased())"
    }

    /// Headers every answer carries; CORS headers only for an allowed origin.
    func secured(_ response: Response, origin: String?) -> Response {
        var response = response
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.xFrameOptions] = "DENY"
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'; sandbox"
        }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        if tls { response.headers[.strictTransportSecurity] = "max-age=31536000" }
        if let origin {
            response.headers[.accessControlAllowOrigin] = anyOrigin ? "*" : origin
            response.headers[.accessControlExposeHeaders] = "Content-Type, Content-Location, Warning, Location"
            response.headers[.crossOriginResourcePolicy] = "cross-origin"
            if !anyOrigin {
                response.headers[.vary] = [response.headers[.vary], "Origin"].compactMap { $0 }.joined(separator: ", ")
            }
        } else {
            response.headers[.crossOriginResourcePolicy] = "same-origin"
        }
        return response
    }
}
