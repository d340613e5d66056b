import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Logins and tokens (issue 9 §2): `POST /api/v1/auth/login` (username, password, TOTP, tenant) and
/// `POST /api/v1/auth/token` (OAuth 2.0 client credentials, in the form body or by HTTP Basic) answer
/// `{"access_token","token_type":"Bearer","expires_in"}`; `POST /api/v1/auth/logout` revokes the token used (an
/// identity provider's token by its `jti`);
/// `GET /api/v1/auth/me` says whose it is. Every refusal is one message that does not say whether the account
/// exists; the cause goes to the audit event. Per client address, too many attempts get 429 with `Retry-After`.
struct AuthRoutes {
    let services: ServerServices
    let limiter: AttemptLimiter

    init(services: ServerServices) {
        self.services = services
        limiter = AttemptLimiter(window: services.settings.loginAttemptWindow)
    }

    /// The largest login or token request body read.
    static let maximumBody = 16 << 10

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/auth/login") { request, context in try await login(request, context) }
        router.post("/api/v1/auth/token") { request, context in try await token(request, context) }
        router.post("/api/v1/auth/logout") { _, context in try await logout(context) }
        router.get("/api/v1/auth/me") { _, context in try me(context) }
    }

    func login(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        let note = context.audit
        note.action = "login"
        if let wait = limiter.admit(note.address) { return Self.tooMany(wait) }
        let body = try await Self.body(request)
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let username = fields["username"] as? String, let password = fields["password"] as? String
        else { throw HTTPFailure(.badRequest, "login takes JSON {\"username\",\"password\",\"totp\",\"tenant\"}") }
        let tenant = fields["tenant"] as? String ?? services.archives.primary.tenant
        let totp = fields["totp"] as? String
        let login = services.identity.login
        let outcome = try await login.attempt(tenant: tenant, username: username, password: password, totp: totp)
        switch outcome {
        case .granted(let issued):
            note.actor = "\(issued.principal.tenant)/\(issued.principal.username)"
            // A clinic's logins go to its own audit log.
            note.tenant = try? await services.archives.archive(issued.principal.tenant)
            return Self.tokenAnswer(issued)
        case .refused(let refusal):
            // The actor stays anonymous: the typed name is a claim, recorded only when it is a plausible username.
            let claimed =
                Account.isValidUsername(username.lowercased()) && Account.isValidTenant(tenant)
                ? " (as \(tenant)/\(username.lowercased()))" : ""
            note.refusal = refusal.rawValue + claimed
            // Refusals too, when the named clinic is one this server holds (else the operator's log has them).
            note.tenant = services.archives.cached(tenant)
            return AuditMiddleware.unauthorized(LoginService.refusalMessage)
        }
    }

    func token(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        let note = context.audit
        note.action = "token"
        if let wait = limiter.admit(note.address) { return Self.tooMany(wait) }
        let body = try await Self.body(request)
        var form: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            form[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        guard form["grant_type"] == "client_credentials" else {
            return Self.oauthError(.badRequest, "unsupported_grant_type")
        }
        var clientID = form["client_id"]
        var clientSecret = form["client_secret"]
        // RFC 6749 2.3.1: HTTP Basic with the form-encoded id and secret.
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        {
            clientID = String(text[..<colon]).removingPercentEncoding
            clientSecret = String(text[text.index(after: colon)...]).removingPercentEncoding
        }
        guard let clientID, let clientSecret, !clientID.isEmpty else {
            return Self.oauthError(.unauthorized, "invalid_client")
        }
        let login = services.identity.login
        // Nil for refused credentials (any other failure is thrown).
        guard let issued = try await Self.issued(login, clientID: clientID, clientSecret: clientSecret) else {
            note.refusal =
                "invalid client credentials"
                + (clientID.utf8.count <= 64 && clientID.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
                    ? " (client \(clientID))" : "")
            return Self.oauthError(.unauthorized, "invalid_client")
        }
        note.actor = "\(issued.principal.tenant)/\(issued.principal.username)"
        note.tenant = try? await services.archives.archive(issued.principal.tenant)
        return Self.tokenAnswer(issued)
    }

    private static func issued(_ login: LoginService, clientID: String, clientSecret: String)
        async throws(ArchiveError) -> IssuedToken?
    {
        do throws(ArchiveError) {
            return try await login.token(clientID: clientID, clientSecret: clientSecret)
        } catch {
            if error.code == .invalidCredentials { return nil }
            throw error
        }
    }

    func logout(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "logout"
        guard let token = context.bearerToken else { throw ArchiveError(.invalidToken, "a bearer token is required") }
        let identity = services.identity
        try await identity.revoke(token)
        return Response(status: .noContent)
    }

    func me(_ context: FacetRequestContext) throws -> Response {
        context.audit.action = "who am I"
        guard let principal = context.principal else {
            throw ArchiveError(.invalidToken, "a bearer token is required")
        }
        let expires = principal.expires.map { "\"\(Formatting.timestamp($0))\"" } ?? "null"
        return Responses.text(
            "{\"username\":\(Responses.jsonString(principal.username)),\"role\":\"\(principal.role.rawValue)\","
                + "\"tenant\":\(Responses.jsonString(principal.tenant)),\"expires\":\(expires)}",
            contentType: "application/json")
    }

    static func body(_ request: Request) async throws -> Data {
        var data = Data()
        for try await buffer in request.body {
            data.append(contentsOf: buffer.readableBytesView)
            guard data.count <= maximumBody else { throw HTTPFailure(.contentTooLarge, "request body too large") }
        }
        return data
    }

    static func tokenAnswer(_ issued: IssuedToken) -> Response {
        var headers = HTTPFields()
        headers[.cacheControl] = "no-store"
        return Responses.text(
            "{\"access_token\":\(Responses.jsonString(issued.accessToken)),\"token_type\":\"Bearer\","
                + "\"expires_in\":\(issued.expiresIn)}", contentType: "application/json", extra: headers)
    }

    /// An OAuth 2.0 error answer (RFC 6749 5.2).
    static func oauthError(_ status: HTTPResponse.Status, _ code: String) -> Response {
        var headers = HTTPFields()
        if status == .unauthorized { headers[.wwwAuthenticate] = "Basic realm=\"facet\"" }
        return Responses.text(
            "{\"error\":\"\(code)\",\"status\":\(status.code)}", status: status, contentType: "application/json",
            extra: headers)
    }

    static func tooMany(_ seconds: Int) -> Response {
        var headers = HTTPFields()
        headers[.retryAfter] = String(seconds)
        return Responses.failure(HTTPFailure(.tooManyRequests, "too many attempts; try again later"), extra: headers)
    }
}
