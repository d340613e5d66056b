import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// Consents (issue 12 §2): `POST /api/v1/patients/{patientID}/consents` with `{"kind", "channels", "scope",
/// "signer", "signedDate", "expires"?, "recipient"?, "form"?}` → 201 (the signed form, base64 PDF in `form`, is
/// stored as an Encapsulated PDF in the patient's record and named by its SOP Instance UID); `GET` lists them (with
/// `active` now); `GET .../consents/{id}`; `POST .../consents/{id}/withdraw` ends one at once, for every marketing
/// use after it. Writing needs `consent-write`, reading `read`. Events say "consent granted" and "consent
/// withdrawn" with the patient's key and the consent's id.
struct ConsentRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/patients/:patient/consents") { request, context in try await list(request, context) }
        router.post("/api/v1/patients/:patient/consents") { request, context in try await grant(request, context) }
        router.get("/api/v1/patients/:patient/consents/:id") { request, context in try await read(request, context) }
        router.post("/api/v1/patients/:patient/consents/:id/withdraw") { request, context in
            try await withdraw(request, context)
        }
    }

    func list(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "consents read"
        let summary = try await clinic.patient(request, context, .read)
        context.audit.action = "consents read (patient \(summary.key.hex))"
        let consents = try await clinic.records(context).list(.consent, patient: summary.key.hex, as: Consent.self)
        return try ClinicSupport.json(consents.map { ClinicOut.Consent($0) })
    }

    func grant(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "consent granted"
        let summary = try await clinic.patient(request, context, .consentWrite)
        let body = try await ClinicSupport.body(request, limit: 24 << 20)
        var consent = try Consent.decode(json: body)
        let records = try clinic.records(context)
        switch consent.scope {
        case .all: break
        case .treatment(let id):
            guard let treatment = try await records.current(.treatment, id: id, as: Treatment.self),
                treatment.patient == summary.key.hex, !treatment.deleted
            else { throw HTTPFailure(.unprocessableContent, "the treatment is not one of this patient's") }
        case .instances(let uids):
            let catalog = try services.tenant(context).archive.index.catalog()
            let own = Set(summary.studyUIDs)
            guard uids.allSatisfy({ catalog.instances[$0].map { own.contains($0.studyInstanceUID) } ?? false }) else {
                throw HTTPFailure(.unprocessableContent, "an instance of the scope is not one of this patient's")
            }
        }
        let id = ClinicTerms.newID()
        context.audit.action = "consent granted (patient \(summary.key.hex), consent \(id), \(consent.kind.rawValue))"
        if let form = try formBytes(body) {
            consent.form = try await storeForm(form, summary, consent, context)
        }
        let written = try await records.write(
            .consent, id: id, patient: summary.key.hex, value: consent, actor: context.audit.actor, expectedVersion: 0)
        let location = "\(services.urls.base)\(request.uri.path)/\(id)"
        return try ClinicSupport.json(
            ClinicOut.Consent(written), status: .created,
            extra: ClinicSupport.versionHeader(written.version, location: location))
    }

    /// The signed form of a body (`"form"`: base64 of a PDF), when given.
    func formBytes(_ body: Data) throws -> Data? {
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let raw = fields["form"],
            !(raw is NSNull)
        else { return nil }
        guard let text = raw as? String, let data = Data(base64Encoded: text, options: .ignoreUnknownCharacters),
            !data.isEmpty
        else { throw HTTPFailure(.badRequest, "form must be the signed form's PDF, base64-encoded") }
        return data
    }

    /// Stores the signed form through the store pipeline (audited as every store) and returns its UID.
    func storeForm(_ pdf: Data, _ summary: PatientSummary, _ consent: Consent, _ context: FacetRequestContext)
        async throws -> String
    {
        let (uid, part10) = try ConsentForm.make(
            pdf, patient: summary, title: "Signed consent (\(consent.kind.rawValue))")
        let tenant = try services.tenant(context)
        let outcomes = await tenant.ingest.store(
            [.bytes({ part10 })], expectedStudy: nil, caller: services.caller(context),
            intentRecorded: { [note = context.audit] in note.intentRecorded = true })
        guard case .stored(let record, _, _)? = outcomes.first else {
            if case .failed(_, _, _, let message, let retryable)? = outcomes.first {
                throw retryable
                    ? ArchiveError(.unavailable, message)
                    : ArchiveError(.unprocessable, "the signed form cannot be stored: \(message)")
            }
            throw ArchiveError(.io, "the signed form cannot be stored")
        }
        context.audit.touch([record])
        return uid
    }

    func named(_ request: Request, _ context: FacetRequestContext, _ action: AccessAction) async throws
        -> (PatientSummary, Versioned<Consent>)
    {
        let summary = try await clinic.patient(request, context, action)
        guard let id = ClinicTerms.recordID(context.parameters.get("id")),
            let record = try await clinic.records(context).current(.consent, id: id, as: Consent.self),
            record.patient == summary.key.hex, !record.deleted
        else { throw HTTPFailure(.notFound, "no such consent") }
        return (summary, record)
    }

    func read(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "consent read"
        let (summary, record) = try await named(request, context, .read)
        context.audit.action = "consent read (patient \(summary.key.hex), consent \(record.id))"
        return try ClinicSupport.json(ClinicOut.Consent(record), extra: ClinicSupport.versionHeader(record.version))
    }

    func withdraw(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "consent withdrawn"
        let (summary, record) = try await named(request, context, .consentWrite)
        context.audit.action = "consent withdrawn (patient \(summary.key.hex), consent \(record.id))"
        guard record.value.withdrawal == nil else {
            throw HTTPFailure(.conflict, "the consent was withdrawn already")
        }
        var consent = record.value
        consent.withdrawal = Consent.Withdrawal(date: Date(), by: context.audit.actor)
        let written = try await clinic.records(context).write(
            .consent, id: record.id, patient: summary.key.hex, value: consent, actor: context.audit.actor,
            expectedVersion: record.version)
        return try ClinicSupport.json(ClinicOut.Consent(written), extra: ClinicSupport.versionHeader(written.version))
    }
}
