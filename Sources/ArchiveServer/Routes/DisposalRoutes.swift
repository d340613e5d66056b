import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Disposal of a patient whose retention has run out (issue 12 §4), for practice managers, under the two-person
/// rule: `POST /api/v1/patients/{patientID}/disposal` (`{"reason"}`) asks for it (201, pending; refused with 409
/// when the patient is not due or is under a legal hold), `POST /api/v1/disposals/{id}/approve` by another practice
/// manager checks again, records the approval (status `approved`: a second approver gets 409; an interrupted erase
/// is run again by its approver) and carries it out by cryptographic erase (the patient's key destroyed, every row purged,
/// every blob removed) and answers the certificate, `POST /api/v1/disposals/{id}/cancel` withdraws a pending one,
/// `GET /api/v1/disposals` and `GET /api/v1/disposals/{id}` read them. Requests and certificates name the patient by
/// keyed hash only; each step is audited.
struct DisposalRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }
    var retention: RetentionRoutes { RetentionRoutes(services: services) }

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/patients/:patient/disposal") { request, context in try await ask(request, context) }
        router.get("/api/v1/disposals") { _, context in try await list(context) }
        router.get("/api/v1/disposals/:id") { _, context in try await read(context) }
        router.post("/api/v1/disposals/:id/approve") { _, context in try await approve(context) }
        router.post("/api/v1/disposals/:id/cancel") { _, context in try await cancel(context) }
    }

    struct Out: Encodable {
        var id: String
        var version: Int
        var patientKey: String
        var status: String
        var reason: String
        var dueDate: String
        var rule: String
        var requestedBy: String
        var requestedAt: String
        var approvers: [String]?
        var approvedBy: String?
        var cancelledBy: String?
        var certificate: CertificateOut?

        init(_ record: Versioned<Disposal>) {
            let value = record.value
            id = record.id
            version = record.version
            patientKey = value.patientKey
            status = value.status.rawValue
            reason = value.reason
            dueDate = value.dueDate
            rule = value.rule
            requestedBy = value.requestedBy
            requestedAt = Formatting.timestamp(value.requestedAt)
            approvers = value.approvers
            approvedBy = value.approvedBy
            cancelledBy = value.cancelledBy
            certificate = value.certificate.map { CertificateOut($0, record: record) }
        }
    }

    struct CertificateOut: Encodable {
        var standard = "NIST SP 800-88 Rev. 1"
        var technique = "purge by cryptographic erase"
        var method: String
        var patientKey: String
        var requestedBy: String
        var approvedBy: String?
        var completedAt: String
        var destroyedKeyID: String?
        var studies: Int
        var series: Int
        var instances: Int
        var blobs: Int
        var records: Int
        var jobs: Int
        var objectsUnderClinicKey: Int
        var blobsLeftForNextStart: Int
        var verification: String

        init(_ certificate: DisposalCertificate, record: Versioned<Disposal>) {
            method = certificate.method
            patientKey = record.value.patientKey
            requestedBy = record.value.requestedBy
            approvedBy = record.value.approvedBy
            completedAt = Formatting.timestamp(certificate.completedAt)
            destroyedKeyID = certificate.destroyedKeyID
            studies = certificate.studies
            series = certificate.series
            instances = certificate.instances
            blobs = certificate.blobs
            records = certificate.records
            jobs = certificate.jobs
            objectsUnderClinicKey = certificate.objectsUnderClinicKey
            blobsLeftForNextStart = certificate.blobsLeftForNextStart
            verification = certificate.verification
        }
    }

    /// The archive of the caller's clinic, refusing one that cannot erase by key.
    private func archive(_ context: FacetRequestContext) throws -> ArchiveService {
        let archive = try services.tenant(context).archive
        guard archive.canDisposeByCryptoErase else {
            throw HTTPFailure(
                .notImplemented,
                "disposal by cryptographic erase is built for the embedded index with patient keys only")
        }
        return archive
    }

    /// The due entry of a patient today, or the 409 that says why there is none.
    private func dueToday(_ key: String, _ context: FacetRequestContext) async throws -> RetentionRoutes.Due {
        let records = try clinic.records(context)
        if let hold = try await records.current(.hold, id: key, as: LegalHold.self), !hold.deleted {
            throw HTTPFailure(.conflict, "the patient is under a legal hold")
        }
        let (policy, _) = try await retention.current(context)
        let (due, _) = try await retention.dueList(context, policy: policy, asOf: ClinicTerms.day(of: Date()))
        guard let entry = due.first(where: { $0.key == key }) else {
            throw HTTPFailure(.conflict, "the patient's retention period has not run out (see /api/v1/retention/due)")
        }
        return entry
    }

    func ask(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "disposal request"
        let summary = try await clinic.patient(request, context, .retention)
        _ = try archive(context)
        let fields = try ClinicJSON.object(
            try await ClinicSupport.body(request, limit: 16 << 10), what: "a disposal request", allowed: ["reason"])
        let reason =
            try ClinicTerms.text(try ClinicJSON.string(fields, "reason"), field: "reason", limit: 500)
            ?? "retention period ended"
        let key = summary.key.hex
        let entry = try await dueToday(key, context)
        let records = try clinic.records(context)
        if try await records.list(.disposal, patient: RetentionRoutes.clinicWide, as: Disposal.self).contains(where: {
            $0.value.patientKey == key && $0.value.status == .pending
        }) {
            throw HTTPFailure(.conflict, "a disposal of this patient is already waiting for approval")
        }
        // The second persons: practice managers already active now (one made or promoted later cannot approve).
        let tenant = try services.tenant(context).tenant
        let approvers = try await services.identity.store.accounts(tenant: tenant).filter {
            $0.role == .practiceManager && $0.status == .active
        }.map { "\(tenant)/\($0.username)" }.filter { $0 != context.audit.actor }.sorted()
        guard !approvers.isEmpty else {
            throw HTTPFailure(
                .conflict, "two-person rule: the clinic has no second active practice manager to approve a disposal")
        }
        let id = UUID().uuidString.lowercased()
        var disposal = Disposal(
            patientKey: key, reason: reason, dueDate: entry.dueDate, rule: entry.rule, requestedBy: context.audit.actor,
            at: Date())
        disposal.approvers = approvers
        let written = try await records.write(
            .disposal, id: id, patient: RetentionRoutes.clinicWide, value: disposal, actor: context.audit.actor,
            expectedVersion: 0)
        context.audit.action = "disposal request \(id) (patient \(key))"
        return try ClinicSupport.json(
            Out(written), status: .created,
            extra: ClinicSupport.versionHeader(written.version, location: "/api/v1/disposals/\(id)"))
    }

    private func disposal(_ context: FacetRequestContext) async throws -> Versioned<Disposal> {
        try services.preauthorize(context, .retention)
        let id = context.parameters.get("id") ?? ""
        guard id.utf8.count <= 64,
            let record = try await clinic.records(context).current(.disposal, id: id, as: Disposal.self)
        else { throw HTTPFailure(.notFound, "no such disposal") }
        return record
    }

    func list(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "disposal list"
        try services.preauthorize(context, .retention)
        let all = try await clinic.records(context).list(
            .disposal, patient: RetentionRoutes.clinicWide, as: Disposal.self)
        struct Answer: Encodable { var disposals: [Out] }
        return try ClinicSupport.json(Answer(disposals: all.map(Out.init)))
    }

    func read(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "disposal read"
        let record = try await disposal(context)
        context.audit.action = "disposal read \(record.id)"
        return try ClinicSupport.json(Out(record), extra: ClinicSupport.versionHeader(record.version))
    }

    func approve(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "disposal approval"
        let record = try await disposal(context)
        let archive = try archive(context)
        guard record.value.requestedBy != context.audit.actor else {
            throw HTTPFailure(
                .forbidden, "two-person rule: the disposal must be approved by someone other than who asked for it")
        }
        let key = record.value.patientKey
        guard let patientKey = PatientKey(hex: key) else { throw HTTPFailure(.notFound, "no such disposal") }
        try await services.authorize(context, .retention, patient: patientKey)
        let records = try clinic.records(context)
        let claimed: Versioned<Disposal>
        switch record.value.status {
        case .pending:
            // Only a practice manager who was one when the disposal was asked for is a second person (the requester
            // could make or promote an account).
            if let approvers = record.value.approvers, !approvers.contains(context.audit.actor) {
                throw HTTPFailure(
                    .forbidden,
                    "two-person rule: the approver must have been a practice manager when the disposal was asked for")
            }
            if record.value.approvers == nil, let principal = context.principal,
                let account = try await services.identity.store.account(
                    tenant: principal.tenant, username: principal.username),
                account.created >= record.value.requestedAt
            {
                throw HTTPFailure(
                    .forbidden,
                    "two-person rule: the approver's account must have existed before the disposal was asked for")
            }
            // Still due and not held (a hold placed after the request wins).
            _ = try await dueToday(key, context)
            // The approval is on record before anything is destroyed: a second approver racing this one gets 409.
            var approved = record.value
            approved.status = .approved
            approved.approvedBy = context.audit.actor
            approved.keyID = archive.patientKeyID(key)
            claimed = try await records.write(
                .disposal, id: record.id, patient: RetentionRoutes.clinicWide, value: approved,
                actor: context.audit.actor, expectedVersion: record.version)
        case .approved where record.value.approvedBy == context.audit.actor:
            // An erase that was interrupted: run again by its approver (it completes what is left).
            claimed = record
        case .approved:
            throw HTTPFailure(.conflict, "the disposal was approved by another practice manager and is under way")
        case .completed, .cancelled:
            throw HTTPFailure(.conflict, "the disposal is \(record.value.status.rawValue), not pending")
        }
        context.audit.action = "disposal \(record.id) (patient \(key)): approved, erasing"
        var certificate = try await archive.disposePatient(key)
        certificate.destroyedKeyID = certificate.destroyedKeyID ?? claimed.value.keyID
        var done = claimed.value
        done.status = .completed
        done.certificate = certificate
        let finished = try await records.write(
            .disposal, id: record.id, patient: RetentionRoutes.clinicWide, value: done,
            actor: context.audit.actor, expectedVersion: claimed.version)
        context.audit.action =
            "disposal \(record.id) (patient \(key)): done by cryptographic erase, key \(certificate.destroyedKeyID ?? "none"), "
            + "\(certificate.instances) instances, \(certificate.blobs) blobs, \(certificate.records) records"
        return try ClinicSupport.json(Out(finished), extra: ClinicSupport.versionHeader(finished.version))
    }

    func cancel(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "disposal cancel"
        let record = try await disposal(context)
        guard record.value.status == .pending else {
            throw HTTPFailure(.conflict, "the disposal is \(record.value.status.rawValue), not pending")
        }
        var cancelled = record.value
        cancelled.status = .cancelled
        cancelled.cancelledBy = context.audit.actor
        let written = try await clinic.records(context).write(
            .disposal, id: record.id, patient: RetentionRoutes.clinicWide, value: cancelled,
            actor: context.audit.actor, expectedVersion: record.version)
        context.audit.action = "disposal cancel \(record.id)"
        return try ClinicSupport.json(Out(written), extra: ClinicSupport.versionHeader(written.version))
    }
}
