import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// Share links (issue 12 §3):
/// - `POST /api/v1/shares` with `{"patientID", "instances": [...] | "comparison": id, "audience": "patient" |
///   "provider", "expires"?, "recipient"?}` → 201 `{"id", "url", "expires", ...}`. A patient link lives up to 30
///   days (the default), a provider link up to 7 and only under an active disclosure consent covering what it shows;
/// - `GET /api/v1/shares?patientID=` lists a patient's links (never their URLs); `DELETE /api/v1/shares/{id}`
///   revokes one (its URL then answers 410);
/// - `GET /share/{token}` (no account): a page with only what was shared; `/share/{token}/photos/{uid}` each photo
///   as a watermarked JPEG (the practice's name, and the invisible mark with the patient's pseudonym and the share's
///   id); `/share/{token}/report.pdf` the comparison's report. Every opening is audited as the share.
struct ShareRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/shares") { request, context in try await create(request, context) }
        router.get("/api/v1/shares") { request, context in try await list(request, context) }
        router.delete("/api/v1/shares/:id") { _, context in try await revoke(context) }
        router.get("/share/:token") { _, context in try await page(context) }
        router.get("/share/:token/photos/:instance") { _, context in try await photo(context) }
        router.get("/share/:token/report.pdf") { _, context in try await report(context) }
    }

    struct Out: Encodable {
        var id: String
        var url: String?
        var audience: String
        var instances: [String]
        var comparison: String?
        var expires: String
        var recipient: String?
        var revoked: String?
        var open: Bool

        init(_ record: Versioned<ShareLink>, url: String? = nil) {
            id = record.id
            self.url = url
            audience = record.value.audience.rawValue
            instances = record.value.instances
            comparison = record.value.comparison
            expires = Formatting.timestamp(record.value.expires)
            recipient = record.value.recipient
            revoked = record.value.revoked.map { Formatting.timestamp($0.date) }
            open = record.value.isOpen(at: Date())
        }
    }

    func create(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "share"
        try services.preauthorize(context, .share)
        let body = try await ClinicSupport.body(request, limit: 256 << 10)
        let fields = try ClinicJSON.object(
            body, what: "a share",
            allowed: ["patientID", "issuer", "instances", "comparison", "audience", "expires", "recipient"])
        guard let id = try ClinicJSON.string(fields, "patientID") else {
            throw HTTPFailure(.badRequest, "a share names its patientID")
        }
        let key = try clinic.key(id, issuer: try ClinicJSON.string(fields, "issuer"), context)
        try await services.authorize(context, .share, patient: key)
        guard let summary = try await clinic.patients(context)[key] else {
            throw HTTPFailure(.notFound, "no such patient")
        }
        guard let audienceName = try ClinicJSON.string(fields, "audience"),
            let audience = ShareLink.Audience(rawValue: audienceName)
        else { throw HTTPFailure(.badRequest, "audience is patient or provider") }
        let tenant = try services.tenant(context)
        let catalog = tenant.archive.index.catalog()
        let own = Set(summary.studyUIDs)
        let uids = try ClinicJSON.strings(fields["instances"], field: "instances", limit: 200)
        var comparison: String?
        var report: String?
        var covered: [String] = []
        if let job = fields["comparison"], !(job is NSNull) {
            guard uids.isEmpty, let jobID = ClinicTerms.recordID(job as? String), let comparisons = tenant.comparisons,
                let found = try await comparisons.queue.job(jobID), found.kind == Comparisons.kind,
                let asked = try? ComparisonRequest(json: found.payload), asked.patient == key.hex
            else {
                throw HTTPFailure(.unprocessableContent, "a share holds photos or one comparison of this patient")
            }
            guard found.status == .done, let result = found.result,
                let pdf = Comparisons.Outcome(decoding: result).pdfInstance, catalog.instances[pdf] != nil
            else { throw HTTPFailure(.unprocessableContent, "the comparison has no report yet") }
            (comparison, report, covered) = (jobID, pdf, [asked.before, asked.after])
        } else {
            guard !uids.isEmpty else { throw HTTPFailure(.badRequest, "a share names instances or a comparison") }
            for uid in uids {
                guard let record = catalog.instances[uid], own.contains(record.studyInstanceUID),
                    record.attributes.int(.rows) != nil
                else { throw HTTPFailure(.unprocessableContent, "an instance is not a photo of this patient") }
            }
            covered = Array(Set(uids)).sorted()
        }
        let now = Date()
        let latest = now.addingTimeInterval(Double(audience.maximumDays) * 86_400)
        var expires = latest
        if let text = try ClinicJSON.string(fields, "expires") {
            if let instant = Formatting.instant(text) {
                expires = instant
            } else {
                let day = try ClinicTerms.date(text, field: "expires")
                expires = ClinicTerms.startOfDay(day)?.addingTimeInterval(86_400) ?? latest
            }
            guard expires > now, expires <= latest.addingTimeInterval(1) else {
                throw HTTPFailure(
                    .unprocessableContent,
                    "a \(audience.rawValue) link lives at most \(audience.maximumDays) days from now")
            }
        }
        var consentID: String?
        var recipient = try ClinicTerms.text(try ClinicJSON.string(fields, "recipient"), field: "recipient", limit: 200)
        let records = try clinic.records(context)
        if audience == .provider {
            // Sharing with another provider is a disclosure: the patient's consent must cover everything shown (a
            // photo's treatment is its tag's), and name this recipient when the link names one.
            let tags = try await records.tags(patient: key.hex)
            let wanted = recipient?.lowercased()
            let consents = try await records.consents(patient: key.hex).filter { held in
                held.consent.kind == .disclosure && held.consent.isActive(at: now)
                    && covered.allSatisfy { uid in
                        held.consent.covers(instance: uid, treatment: tags[uid]?.0.treatment)
                    }
                    && (wanted == nil || held.consent.recipient?.lowercased() == wanted)
            }
            guard let consent = consents.first else {
                throw HTTPFailure(
                    .unprocessableContent,
                    "no active disclosure consent of the patient covers what would be shared"
                        + (wanted == nil ? "" : " with this recipient"))
            }
            consentID = consent.id
            recipient = recipient ?? consent.consent.recipient
        }
        let share = ShareLink(
            audience: audience, instances: comparison == nil ? covered : [], comparison: comparison, report: report,
            expires: expires, consent: consentID, recipient: recipient)
        let token = ShareLink.newToken()
        let shareID = ClinicTerms.newID()
        guard let digest = ShareLink.digest(token) else { throw HTTPFailure(.internalServerError, "token") }
        let written = try await records.write(
            .share, id: shareID, patient: key.hex, parent: digest, value: share, actor: context.audit.actor,
            expectedVersion: 0)
        context.audit.action =
            "share (patient \(key.hex), share \(shareID), \(audience.rawValue)"
            + (consentID.map { ", consent \($0)" } ?? "") + ")"
        context.audit.touch(covered.compactMap { catalog.instances[$0] })
        return try ClinicSupport.json(
            Out(written, url: "\(services.urls.base)/share/\(token)"), status: .created)
    }

    func list(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "shares read"
        try services.preauthorize(context, .share)
        let items = try RequestParts.queryItems(request)
        guard let id = items.first(where: { $0.name == "patientID" })?.value else {
            throw HTTPFailure(.badRequest, "shares are listed per patient: ?patientID=")
        }
        let key = try clinic.key(id, issuer: items.first { $0.name == "issuer" }?.value, context)
        try await services.authorize(context, .share, patient: key)
        context.audit.action = "shares read (patient \(key.hex))"
        let shares = try await clinic.records(context).list(.share, patient: key.hex, as: ShareLink.self)
        return try ClinicSupport.json(shares.map { Out($0) })
    }

    func revoke(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "share revoke"
        try services.preauthorize(context, .share)
        let records = try clinic.records(context)
        guard let id = ClinicTerms.recordID(context.parameters.get("id")),
            let share = try await records.current(.share, id: id, as: ShareLink.self),
            let key = PatientKey(hex: share.patient)
        else { throw HTTPFailure(.notFound, "no such share") }
        try await services.authorize(context, .share, patient: key)
        context.audit.action = "share revoke (patient \(key.hex), share \(id))"
        guard share.value.revoked == nil else { throw HTTPFailure(.gone, "the share was revoked already") }
        var value = share.value
        value.revoked = Consent.Withdrawal(date: Date(), by: context.audit.actor)
        _ = try await records.write(
            .share, id: id, patient: share.patient, parent: share.parent, value: value, actor: context.audit.actor,
            expectedVersion: share.version)
        return Response(status: .noContent)
    }

    // MARK: the public side

    /// The share of the URL's token, found in whichever clinic holds it: 404 for no such link, 410 once revoked or
    /// expired. The audit event is the share's, in that clinic's log.
    func opened(_ context: FacetRequestContext, _ action: String) async throws -> (TenantArchive, Versioned<ShareLink>)
    {
        context.audit.action = action
        guard let token = context.parameters.get("token"), let digest = ShareLink.digest(token) else {
            throw HTTPFailure(.notFound, "no such link")
        }
        for tenant in services.archives.opened {
            guard let records = tenant.records,
                let found = try await records.list(.share, parent: digest, as: ShareLink.self).first
            else { continue }
            context.audit.tenant = tenant
            context.audit.actor = "share/\(found.id)"
            context.audit.action = "\(action) (patient \(found.patient), share \(found.id))"
            guard found.value.isOpen(at: Date()) else {
                throw HTTPFailure(.gone, found.value.revoked == nil ? "this link has expired" : "this link was revoked")
            }
            // A provider's link lives only as long as the disclosure consent it was made under.
            if found.value.audience == .provider {
                var held: Versioned<Consent>?
                if let id = found.value.consent { held = try await records.current(.consent, id: id, as: Consent.self) }
                guard let held, !held.deleted, held.value.isActive(at: Date()) else {
                    throw HTTPFailure(.gone, "the patient's consent to this disclosure has ended")
                }
            }
            return (tenant, found)
        }
        throw HTTPFailure(.notFound, "no such link")
    }

    static func headers(_ type: String) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-store"
        headers[.referrerPolicy] = "no-referrer"
        headers[HTTPField.Name("X-Robots-Tag")!] = "noindex, nofollow"
        return headers
    }

    func page(_ context: FacetRequestContext) async throws -> Response {
        let (tenant, share) = try await opened(context, "share opened")
        let catalog = tenant.archive.index.catalog()
        let token = context.parameters.get("token") ?? ""
        context.audit.touch(share.value.instances.compactMap { catalog.instances[$0] })
        let photos = share.value.instances.enumerated().map { index, uid in
            (url: "/share/\(token)/photos/\(uid)", label: "Photo \(index + 1)")
        }
        let html = ShareLink.page(
            practice: services.settings.practiceName, photos: photos,
            report: share.value.report == nil ? nil : "/share/\(token)/report.pdf", expires: share.value.expires)
        var headers = Self.headers("text/html; charset=utf-8")
        headers[.contentSecurityPolicy] =
            "default-src 'none'; img-src 'self'; style-src '\(ShareLink.styleSource)'; base-uri 'none'; "
            + "form-action 'none'; frame-ancestors 'none'"
        return Responses.text(html, contentType: "text/html; charset=utf-8", extra: headers)
    }

    func photo(_ context: FacetRequestContext) async throws -> Response {
        let (tenant, share) = try await opened(context, "share download")
        let uid = try RequestParts.uid(context, "instance")
        // Only what was shared: another photo, even of the same patient, does not exist here.
        guard share.value.instances.contains(uid), let record = tenant.archive.index.catalog().instances[uid],
            let records = tenant.records
        else { throw HTTPFailure(.notFound, "no such photo in this share") }
        context.audit.touch([record])
        let exporter = MarketingExport(archive: tenant.archive, records: records, keyOf: { _ in nil })
        let jpeg = try await tenant.retrieve.watermarkedJPEG(
            record,
            payload: MarketingExport.payload(
                practice: services.settings.practiceName, pseudonym: exporter.pseudonym(share.patient), id: share.id),
            visible: "© \(services.settings.practiceName)")
        var headers = Self.headers("image/jpeg")
        let number = (share.value.instances.firstIndex(of: uid) ?? 0) + 1
        headers[.contentDisposition] = "inline; filename=\"photo-\(number).jpg\""
        return Responses.bytes(jpeg, contentType: "image/jpeg", extra: headers)
    }

    func report(_ context: FacetRequestContext) async throws -> Response {
        let (tenant, share) = try await opened(context, "share download")
        guard let uid = share.value.report, let record = tenant.archive.index.catalog().instances[uid] else {
            throw HTTPFailure(.notFound, "this share holds no report")
        }
        context.audit.touch([record])
        let (data, _) = try await tenant.retrieve.bulkValue(record, tag: .encapsulatedDocument)
        var headers = Self.headers("application/pdf")
        headers[.contentDisposition] = "attachment; filename=\"comparison-report.pdf\""
        return Responses.bytes(data, contentType: "application/pdf", extra: headers)
    }
}
