import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Account administration over HTTP (issue 9 §2), for the roles the access policy lets `admin` (practice manager,
/// system admin), on the accounts of the caller's own tenant: `GET /api/v1/users` and `/api/v1/users/{username}`,
/// `POST /api/v1/users` with `{"username", "role", "password"?}`, `POST .../{username}/disable`, `/enable`,
/// `/reset-mfa`, `/password` (`{"password"}`, or none to generate one) and `PUT .../{username}/role` with
/// `{"role"}`. Every rule is `AccountAdministration`'s, shared with `facet users`; answers are the JSON its `--json`
/// prints. The audit event names the action and the target username (usernames are not PHI); no answer or event
/// carries a hash, and secrets appear only in the one answer that hands them out.
struct UserRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/users") { _, context in try await list(context) }
        router.post("/api/v1/users") { request, context in try await create(request, context) }
        router.get("/api/v1/users/:username") { _, context in try await read(context) }
        router.post("/api/v1/users/:username/disable") { _, context in try await setStatus(.disabled, context) }
        router.post("/api/v1/users/:username/enable") { _, context in try await setStatus(.active, context) }
        router.post("/api/v1/users/:username/reset-mfa") { _, context in try await resetMFA(context) }
        router.post("/api/v1/users/:username/password") { request, context in try await setPassword(request, context) }
        router.put("/api/v1/users/:username/role") { request, context in try await setRole(request, context) }
    }

    var administration: AccountAdministration { services.identity.administration }

    func list(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "account list"
        let tenant = try admit(context).tenant
        let administration = administration
        return try answer(
            try await perform { () async throws(ArchiveError) in try await administration.list(tenant: tenant) })
    }

    func read(_ context: FacetRequestContext) async throws -> Response {
        let (principal, username) = try target(context, "read")
        let administration = administration
        return try answer(
            try await perform { () async throws(ArchiveError) in
                try await administration.summary(tenant: principal.tenant, username: username)
            })
    }

    func create(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "account add"
        let tenant = try admit(context).tenant
        let fields = try await object(request)
        guard let username = fields["username"] as? String, let roleName = fields["role"] as? String,
            fields["password"] == nil || fields["password"] is String || fields["password"] is NSNull
        else { throw HTTPFailure(.badRequest, "an account is {\"username\", \"role\", \"password\"?}") }
        if Account.isValidUsername(username) {
            context.audit.action = "account add \(username)" + (Role(rawValue: roleName).map { " as \($0)" } ?? "")
        }
        guard let role = Role(rawValue: roleName) else {
            throw HTTPFailure(
                .unprocessableContent, "unknown role; roles: \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let password = fields["password"] as? String
        let administration = administration
        let credentials = try await perform { () async throws(ArchiveError) in
            try await administration.add(tenant: tenant, username: username, role: role, password: password)
        }
        var headers = HTTPFields()
        headers[.location] = "\(services.urls.base)/api/v1/users/\(username)"
        return try answer(credentials, status: .created, extra: headers)
    }

    func setStatus(_ status: Account.Status, _ context: FacetRequestContext) async throws -> Response {
        let (principal, username) = try target(context, status == .disabled ? "disable" : "enable")
        let administration = administration
        return try answer(
            try await perform { () async throws(ArchiveError) in
                try await administration.setStatus(
                    tenant: principal.tenant, username: username, status, by: principal.username)
                return try await administration.summary(tenant: principal.tenant, username: username)
            })
    }

    func resetMFA(_ context: FacetRequestContext) async throws -> Response {
        let (principal, username) = try target(context, "reset-mfa")
        let administration = administration
        let uri = try await perform { () async throws(ArchiveError) in
            try await administration.resetMFA(tenant: principal.tenant, username: username)
        }
        return try answer(
            AccountAdministration.Reissued(tenant: principal.tenant, username: username, otpauthURI: uri))
    }

    func setPassword(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        let (principal, username) = try target(context, "set-password")
        // No body, or no password in it: one is generated.
        let body = try await AuthRoutes.body(request)
        var password: String?
        if !body.isEmpty {
            let fields = try Self.object(body)
            guard fields["password"] == nil || fields["password"] is String || fields["password"] is NSNull else {
                throw HTTPFailure(.badRequest, "a new password is {\"password\"} (or no body, to generate one)")
            }
            password = fields["password"] as? String
        }
        let chosen = password
        let administration = administration
        let generated = try await perform { () async throws(ArchiveError) in
            try await administration.setPassword(tenant: principal.tenant, username: username, password: chosen)
        }
        return try answer(
            AccountAdministration.Reissued(tenant: principal.tenant, username: username, password: generated))
    }

    func setRole(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        let (principal, username) = try target(context, "set-role")
        guard let roleName = try await object(request)["role"] as? String else {
            throw HTTPFailure(.badRequest, "a role change is {\"role\"}")
        }
        guard let role = Role(rawValue: roleName) else {
            throw HTTPFailure(
                .unprocessableContent, "unknown role; roles: \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        context.audit.action = "account set-role \(username) to \(role)"
        let administration = administration
        return try answer(
            try await perform { () async throws(ArchiveError) in
                try await administration.setRole(
                    tenant: principal.tenant, username: username, role: role, by: principal.username)
                return try await administration.summary(tenant: principal.tenant, username: username)
            })
    }

    /// The policy's `admin` decision (403 for other roles, 404 for another tenant's principal); the principal.
    func admit(_ context: FacetRequestContext) throws -> Principal {
        try services.preauthorize(context, .admin)
        return try ServerServices.principal(context)
    }

    /// Names the action and the URL's username in the audit event, admits the caller, and returns both. A name no
    /// account can have is 404, as an absent account is (the store is asked only about the caller's tenant).
    func target(_ context: FacetRequestContext, _ verb: String) throws -> (Principal, String) {
        let username = context.parameters.get("username")?.removingPercentEncoding ?? ""
        let valid = Account.isValidUsername(username)
        context.audit.action = "account \(verb) " + (valid ? username : "(not a username)")
        let principal = try admit(context)
        guard valid else { throw HTTPFailure(.notFound, "no such account") }
        return (principal, username)
    }

    /// The request's JSON object, or 400.
    func object(_ request: Request) async throws -> [String: Any] {
        try Self.object(try await AuthRoutes.body(request))
    }

    static func object(_ body: Data) throws -> [String: Any] {
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw HTTPFailure(.badRequest, "the body is not a JSON object")
        }
        return fields
    }

    /// Runs one administration call on the blocking pool (scrypt, SQLite writes). A value its rules refuse (a
    /// username, a weak password, a role) is 422 here; a body that is not the right shape was 400 before.
    func perform<T: Sendable>(_ body: () async throws(ArchiveError) -> T) async throws -> T {
        do throws(ArchiveError) {
            return try await body()
        } catch {
            if error.code == .invalidInput { throw HTTPFailure(.unprocessableContent, error.message) }
            throw error
        }
    }

    func answer(_ value: some Encodable, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) throws
        -> Response
    {
        Responses.bytes(
            try AccountAdministration.json(value), status: status, contentType: "application/json", extra: extra)
    }
}
