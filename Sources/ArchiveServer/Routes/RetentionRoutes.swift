import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Retention (issue 12 §4), for the practice manager: `GET|PUT /api/v1/retention/policy` (`{"state", "minimumYears"}`,
/// the clinic's own, kept as a versioned record), `GET /api/v1/retention/due?asOf=YYYY-MM-DD` (the patients whose
/// record may be disposed of on that day: last visit plus the policy's years, minors kept until the state's age;
/// patients under a legal hold are left out and counted), `PUT|DELETE /api/v1/patients/{patientID}/legal-hold`
/// (`{"reason"}`).
struct RetentionRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }
    static let policyID = RetentionPolicy.recordID
    /// The record store's patient field for the clinic-wide policy (a keyed hash is 64 hex digits: no clash).
    static let clinicWide = "clinic"

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/retention/policy") { _, context in try await policy(context) }
        router.put("/api/v1/retention/policy") { request, context in try await setPolicy(request, context) }
        router.get("/api/v1/retention/due") { request, context in try await due(request, context) }
        router.put("/api/v1/patients/:patient/legal-hold") { request, context in try await hold(request, context) }
        router.delete("/api/v1/patients/:patient/legal-hold") { request, context in
            try await release(request, context)
        }
    }

    struct PolicyOut: Encodable {
        var state: String?
        var minimumYears: Int
        var federalYears = RetentionPolicy.federalYears
        var adultYears: Int
        var rule: String
        var version: Int

        init(_ policy: RetentionPolicy, version: Int) {
            state = policy.state
            minimumYears = policy.minimumYears
            (adultYears, rule) = policy.adultYears
            self.version = version
        }
    }

    func current(_ context: FacetRequestContext) async throws -> (RetentionPolicy, Int) {
        let kept = try await clinic.records(context).current(.policy, id: Self.policyID, as: RetentionPolicy.self)
        return (kept?.value ?? RetentionPolicy(), kept?.version ?? 0)
    }

    func policy(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "retention policy read"
        try services.preauthorize(context, .retention)
        let (policy, version) = try await current(context)
        return try ClinicSupport.json(PolicyOut(policy, version: version))
    }

    func setPolicy(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "retention policy change"
        try services.preauthorize(context, .retention)
        let policy = try RetentionPolicy.decode(json: try await ClinicSupport.body(request, limit: 4 << 10))
        let (_, version) = try await current(context)
        let written = try await clinic.records(context).write(
            .policy, id: Self.policyID, patient: Self.clinicWide, value: policy, actor: context.audit.actor,
            expectedVersion: try ClinicSupport.expectedVersion(request, body: nil) ?? version)
        context.audit.action =
            "retention policy change (state \(policy.state ?? "none"), minimum \(policy.minimumYears) y)"
        return try ClinicSupport.json(PolicyOut(written.value, version: written.version))
    }

    func due(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "retention due read"
        try services.preauthorize(context, .retention)
        var asOf = ClinicTerms.day(of: Date())
        for item in try RequestParts.queryItems(request) {
            guard item.name == "asOf" else { throw HTTPFailure(.badRequest, "the only parameter is asOf=YYYY-MM-DD") }
            asOf = try ClinicTerms.date(item.value, field: "asOf")
        }
        let (policy, _) = try await current(context)
        let (unsorted, heldCount) = try await dueList(context, policy: policy, asOf: asOf)
        let due = unsorted.sorted { ($0.dueDate, $0.key) < ($1.dueDate, $1.key) }
        context.audit.action = "retention due read (\(due.count) due on \(asOf), \(heldCount) held)"
        context.audit.resultStudyUIDs = []
        struct Answer: Encodable {
            var asOf: String
            var policy: PolicyOut
            var held: Int
            var patients: [Due]
        }
        return try ClinicSupport.json(
            Answer(asOf: asOf, policy: PolicyOut(policy, version: 0), held: heldCount, patients: due))
    }

    struct Due: Encodable {
        var patientID: String
        var issuer: String?
        var key: String
        var name: String?
        var birthDate: String?
        var lastVisit: String
        var dueDate: String
        var rule: String
    }

    /// The patients due on `asOf` under `policy` (not sorted), and how many more would be but are held.
    func dueList(_ context: FacetRequestContext, policy: RetentionPolicy, asOf: String) async throws
        -> (due: [Due], held: Int)
    {
        let records = try clinic.records(context)
        let held = Set(try await records.list(.hold, as: LegalHold.self).map(\.patient))
        var lastTreatment: [String: String] = [:]
        for treatment in try await records.list(.treatment, as: Treatment.self) {
            lastTreatment[treatment.patient] = max(lastTreatment[treatment.patient] ?? "", treatment.value.date)
        }
        var due: [Due] = []
        var heldCount = 0
        for summary in try await clinic.patients(context).values {
            let visits = [summary.lastVisit, lastTreatment[summary.key.hex]].compactMap { $0 }
            guard let last = visits.max(),
                let (date, rule) = policy.dueDate(lastVisit: last, birthDate: summary.birthDate), date <= asOf
            else { continue }
            if held.contains(summary.key.hex) {
                heldCount += 1
                continue
            }
            due.append(
                Due(
                    patientID: summary.patientID, issuer: summary.issuer, key: summary.key.hex, name: summary.name,
                    birthDate: summary.birthDate, lastVisit: last, dueDate: date, rule: rule))
        }
        return (due, heldCount)
    }

    func hold(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "legal hold"
        let summary = try await clinic.patient(request, context, .retention)
        let fields = try ClinicJSON.object(
            try await ClinicSupport.body(request, limit: 16 << 10), what: "a legal hold", allowed: ["reason"])
        guard let reason = try ClinicTerms.text(try ClinicJSON.string(fields, "reason"), field: "reason", limit: 500)
        else { throw HTTPFailure(.badRequest, "a legal hold gives its reason") }
        let records = try clinic.records(context)
        let current = try await records.current(.hold, id: summary.key.hex, as: LegalHold.self)
        let written = try await records.write(
            .hold, id: summary.key.hex, patient: summary.key.hex, value: LegalHold(reason: reason),
            actor: context.audit.actor, expectedVersion: current?.version ?? 0)
        context.audit.action = "legal hold (patient \(summary.key.hex))"
        struct Out: Encodable {
            var patientKey: String
            var reason: String
            var version: Int
            var since: String
        }
        return try ClinicSupport.json(
            Out(
                patientKey: summary.key.hex, reason: reason, version: written.version,
                since: Formatting.timestamp(written.date)))
    }

    func release(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "legal hold release"
        let summary = try await clinic.patient(request, context, .retention)
        let records = try clinic.records(context)
        guard let current = try await records.current(.hold, id: summary.key.hex, as: LegalHold.self), !current.deleted
        else { throw HTTPFailure(.notFound, "the patient is under no legal hold") }
        _ = try await records.write(
            .hold, id: summary.key.hex, patient: summary.key.hex, value: current.value, actor: context.audit.actor,
            deleted: true, expectedVersion: current.version)
        context.audit.action = "legal hold release (patient \(summary.key.hex))"
        return Response(status: .noContent)
    }
}
