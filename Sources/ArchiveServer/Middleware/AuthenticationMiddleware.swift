import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Who is asking: a `Bearer` token (Facet's own ES256 JWT: signature, algorithm, issuer, audience, expiry,
/// not-before, revocation and idle timeout all checked; or, when `oidc-issuer` is set, an RS256/ES256 token of the
/// clinic's identity provider, see `OIDCTokenVerifier`) becomes the request's `Principal`, and the audit event
/// names them. Without a valid token: 401 with `WWW-Authenticate: Bearer`. Open without a token: `/health/live`,
/// `/health/ready`, the login and token endpoints, the capabilities and OpenAPI documents, and share links (`GET
/// /share/...`, whose token is checked by `ShareRoutes`). `/metrics` takes an admin's token
/// or the scrape token.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    let services: ServerServices

    static let open: Set<String> = [
        "/health/live", "/health/ready", "/api/v1/auth/login", "/api/v1/auth/token", "/fhir/r4/metadata",
        "/api/v1/openapi.json",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var path = Substring(request.uri.path)
        while path.utf8.count > 1 && path.utf8.last == UInt8(ascii: "/") { path = path.dropLast() }
        // Share links are their own credential (an unguessable token in the URL; ShareRoutes checks it).
        if Self.open.contains(String(path)) || (request.method == .options && path == "/dicomweb")
            || (path.hasPrefix("/share/") && (request.method == .get || request.method == .head))
        {
            return try await next(request, context)
        }
        if path == "/metrics", let expected = services.settings.metricsToken, let given = Self.bearer(request),
            ConstantTime.equal(Array(given.utf8), Array(expected.utf8))
        {
            return try await next(request, context)
        }
        guard let token = Self.bearer(request) else {
            return AuditMiddleware.unauthorized("a bearer token is required")
        }
        let principal: Principal
        let identity = services.identity
        do {
            // A read of the account store (now and then a write); a provider's key fetch runs on the identity pool.
            // `IdentityServices.verifier(for:)` picks the verifier by issuer.
            principal = try await identity.verify(token)
        } catch {
            // The reason goes to the audit event, not to the client.
            context.audit.refusal = error.message
            return AuditMiddleware.unauthorized("the token is not valid")
        }
        context.audit.actor = "\(principal.tenant)/\(principal.username)"
        let tenant: TenantArchive
        do {
            // Open already but for the first request of a new clinic, which creates its folder and key.
            tenant = try await services.archives.archive(principal.tenant)
        } catch {
            return Responses.failure(HTTPFailure(.serviceUnavailable, "this clinic's archive cannot be opened"))
        }
        context.audit.tenant = tenant
        var context = context
        context.principal = principal
        context.bearerToken = token
        context.tenant = tenant
        if path == "/metrics" {
            // Outside the audited paths: the refusal is answered here.
            do {
                // The counts are the whole server's: for the operator's own clinic (the default tenant) only.
                guard principal.tenant == services.archives.primary.tenant else { throw HTTPFailure(.forbidden, "") }
                try await services.authorize(context, .metrics)
            } catch {
                return Responses.failure(HTTPFailure(.forbidden, "metrics are for administrators or the scrape token"))
            }
        }
        return try await next(request, context)
    }

    /// The token of an `Authorization: Bearer ...` header.
    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty || token.utf8.count > 8192 ? nil : token
    }
}

/// Attempts per client address on the login and token endpoints: at most `limit` in `window` seconds, then 429 with
/// `Retry-After` (account lockout protects each account; this protects the endpoint).
final class AttemptLimiter: @unchecked Sendable {
    private let lock = NSLock()
    private var attempts: [String: [Date]] = [:]
    let limit: Int
    let window: TimeInterval

    init(limit: Int = 20, window: TimeInterval = 60) {
        self.limit = limit
        self.window = window
    }

    /// The most addresses remembered at once; when full, new addresses wait too (the endpoint is under attack).
    let maximumAddresses = 10_000

    /// Records an attempt; returns the seconds to wait when over the limit.
    func admit(_ address: String, now: Date = Date()) -> Int? {
        lock.withLock {
            var recent = (attempts[address] ?? []).filter { now.timeIntervalSince($0) < window }
            if attempts[address] == nil && attempts.count >= maximumAddresses {
                // Forget addresses with nothing in the window; if all are recent, refuse the newcomer.
                attempts = attempts.filter { $0.value.contains { now.timeIntervalSince($0) < window } }
                if attempts.count >= maximumAddresses { return Int(window) }
            }
            guard recent.count < limit else {
                attempts[address] = recent
                let oldest = recent.first ?? now
                return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
            }
            recent.append(now)
            attempts[address] = recent
            return nil
        }
    }
}
