import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Care teams and break-the-glass (issue 9 §3): `PUT /api/v1/patients/{patientID}/care-team` with
/// `{"members": [usernames]}` and `GET` (physician or practice manager; `?issuer=` for an Issuer of Patient ID);
/// `POST /api/v1/break-glass` with `{"patientID", "reason"}` opens one patient for 60 minutes to a medical
/// assistant outside its care team, audited as emergency access; `GET /api/v1/break-glass` lists the grants for
/// the practice manager and the auditor. Patient IDs are turned into keyed hashes at once and never stored or
/// logged in the clear.
struct PatientAccessRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.put("/api/v1/patients/:patient/care-team") { request, context in
            try await setCareTeam(request, context)
        }
        router.get("/api/v1/patients/:patient/care-team") { request, context in try await careTeam(request, context) }
        router.post("/api/v1/break-glass") { request, context in try await breakGlass(request, context) }
        router.get("/api/v1/break-glass") { _, context in try await grants(context) }
    }

    /// The patient named by the URL (percent-decoded) and its optional `?issuer=`, as the policy's key; 400 for an
    /// empty or overlong ID.
    func patient(_ request: Request, _ context: FacetRequestContext) throws -> PatientKey {
        let id = context.parameters.get("patient")?.removingPercentEncoding ?? ""
        let issuer = try RequestParts.queryItems(request).first { $0.name == "issuer" }?.value
        guard id.utf8.count <= 64, (issuer?.utf8.count ?? 0) <= 64,
            let key = services.identity.patient(id, issuer: issuer, tenant: try services.tenant(context).tenant)
        else { throw HTTPFailure(.badRequest, "a Patient ID of 1 to 64 characters is needed") }
        return key
    }

    func setCareTeam(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "care team change"
        try services.preauthorize(context, .careTeamWrite)
        let key = try patient(request, context)
        let body = try await AuthRoutes.body(request)
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let members = fields["members"] as? [String], members.count <= 1000
        else { throw HTTPFailure(.badRequest, "a care team is {\"members\": [usernames]}") }
        let names = members.map { $0.lowercased() }
        guard names.allSatisfy(Account.isValidUsername) else {
            throw HTTPFailure(.badRequest, "a member is not a valid username")
        }
        let tenant = try services.tenant(context).tenant
        try await services.identity.store.setCareTeam(tenant: tenant, patient: key, members: names)
        return try await careTeamAnswer(key, tenant: tenant)
    }

    func careTeam(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "care team read"
        try services.preauthorize(context, .careTeamWrite)
        return try await careTeamAnswer(try patient(request, context), tenant: try services.tenant(context).tenant)
    }

    func careTeamAnswer(_ key: PatientKey, tenant: String) async throws -> Response {
        let members = try await services.identity.store.careTeam(tenant: tenant, patient: key)
        return Responses.text(
            "{\"patient\":\"\(key.hex)\",\"members\":["
                + members.sorted().map(Responses.jsonString).joined(separator: ",")
                + "]}", contentType: "application/json")
    }

    func breakGlass(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "break the glass"
        try services.preauthorize(context, .breakGlass)
        guard let principal = context.principal else { throw ArchiveError(.invalidToken, "a bearer token is required") }
        let body = try await AuthRoutes.body(request)
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let id = fields["patientID"] as? String, id.utf8.count <= 64, let reason = fields["reason"] as? String,
            let key = services.identity.patient(id, issuer: fields["issuer"] as? String, tenant: principal.tenant)
        else { throw HTTPFailure(.badRequest, "break-the-glass is {\"patientID\", \"reason\"}") }
        let grant = try await services.identity.access.breakGlass(principal, patient: key, reason: reason)
        // An emergency access: the event names the keyed patient and the grant's end; the reason stays sealed.
        context.audit.action =
            "break the glass (emergency access to patient \(key.hex) until \(Formatting.timestamp(grant.end)))"
        return Responses.text(
            "{\"patient\":\"\(key.hex)\",\"until\":\"\(Formatting.timestamp(grant.end))\"}", status: .created,
            contentType: "application/json")
    }

    func grants(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "break-the-glass grants read"
        try services.preauthorize(context, .auditRead)
        let grants = try await services.identity.store.grants(
            tenant: try services.tenant(context).tenant, activeAt: nil)
        let items = grants.map { grant in
            "{\"username\":\(Responses.jsonString(grant.username)),\"patient\":\"\(grant.patient.hex)\","
                + "\"start\":\"\(Formatting.timestamp(grant.start))\",\"end\":\"\(Formatting.timestamp(grant.end))\","
                + "\"reason\":\(Responses.jsonString(grant.reason))}"
        }
        return Responses.text("[" + items.joined(separator: ",") + "]", contentType: "application/json")
    }
}
