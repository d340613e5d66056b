import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Comparison jobs (issue 11 §1): `POST /api/v1/comparisons` with `{"before", "after", "roi", "landmarks"?,
/// "title"?}` naming two stored 3D captures of one patient → 202 `{"id", "status": "queued"}` and `Location`;
/// `GET /api/v1/comparisons/{id}` → the job (status, progress, the result with `facet compare --json`'s keys, the
/// error); `GET /api/v1/comparisons?patientID=` lists them, newest first; `DELETE /api/v1/comparisons/{id}` cancels a
/// queued or running one. Each is decided by the access policy as a read of the captures' patient; asking and
/// cancelling also need a role that stores (the job writes its report into the patient's study). The job runs on
/// the clinic's job queue (`ComparisonWorker`), so it survives a restart and runs on exactly one replica.
struct ComparisonRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/comparisons") { request, context in try await submit(request, context) }
        router.get("/api/v1/comparisons") { request, context in try await list(request, context) }
        router.get("/api/v1/comparisons/:id") { _, context in try await read(context) }
        router.delete("/api/v1/comparisons/:id") { _, context in try await cancel(context) }
        router.get("/api/v1/comparisons/:id/report.pdf") { _, context in try await pdf(context) }
        router.get("/api/v1/comparisons/:id/report.html") { _, context in try await html(context) }
    }

    func comparisons(_ context: FacetRequestContext) throws -> Comparisons {
        guard let comparisons = try services.tenant(context).comparisons else {
            throw HTTPFailure(.notImplemented, "this archive's index has no job queue")
        }
        return comparisons
    }

    func submit(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparison request"
        // A comparison writes its report into the patient's study: the role must be one that stores, and it must
        // see the patient.
        try services.preauthorize(context, .store)
        let comparisons = try comparisons(context)
        var asked = try ComparisonRequest(json: try await AuthRoutes.body(request))
        let (before, after) = try comparisons.captures(asked)
        context.audit.touch([before, after])
        let tenant = try services.tenant(context)
        let catalog = tenant.archive.index.catalog()
        let patients = [before, after].map { record in
            catalog.studies[record.studyInstanceUID].flatMap {
                services.identity.patient(of: $0, tenant: tenant.tenant)
            }
        }
        // Decided before the patient check: a capture the caller may not see is refused as such.
        try await services.authorize(context, .read, patient: patients[0])
        try await services.authorize(context, .read, patient: patients[1])
        guard let patient = patients[0], patients[0] == patients[1] else {
            throw ArchiveError(.unprocessable, "the two captures are not of one patient")
        }
        asked.patient = patient.hex
        asked.requestedBy = context.audit.actor
        let id = try await comparisons.submit(asked)
        services.jobs.ring()
        context.audit.action = "comparison request (job \(id))"
        var headers = HTTPFields()
        headers[.location] = "\(services.urls.base)/api/v1/comparisons/\(id)"
        return Responses.text(
            "{\"id\":\"\(id)\",\"status\":\"queued\"}", status: .accepted, contentType: "application/json",
            extra: headers)
    }

    /// The job named by the URL, if it is a comparison this principal may see (404 otherwise, 403 when the role
    /// may see it in general but not this patient).
    func comparison(_ context: FacetRequestContext) async throws -> (Job, ComparisonRequest) {
        let comparisons = try comparisons(context)
        guard let id = context.parameters.get("id"), UUID(uuidString: id) != nil, id == id.lowercased(),
            let job = try await comparisons.queue.job(id), job.kind == Comparisons.kind
        else { throw HTTPFailure(.notFound, "no such comparison") }
        let asked = try ComparisonRequest(json: job.payload)
        try await services.authorize(context, .read, patient: PatientKey(hex: asked.patient))
        return (job, asked)
    }

    func read(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparison read"
        try services.preauthorize(context, .read)
        let (job, asked) = try await comparison(context)
        try touch(context, asked)
        return Responses.text(Self.json(job, asked, base: services.urls.base), contentType: "application/json")
    }

    func cancel(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparison cancel"
        try services.preauthorize(context, .store)
        let (job, asked) = try await comparison(context)
        try touch(context, asked)
        let comparisons = try comparisons(context)
        guard try await comparisons.queue.cancel(job.id) else {
            throw HTTPFailure(.conflict, "the comparison has ended already (\(job.status.rawValue))")
        }
        let now = try await comparisons.queue.job(job.id) ?? job
        return Responses.text(Self.json(now, asked, base: services.urls.base), contentType: "application/json")
    }

    func list(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparisons read"
        try services.preauthorize(context, .read)
        let comparisons = try comparisons(context)
        let items = try RequestParts.queryItems(request)
        var wanted: PatientKey?
        if let id = items.first(where: { $0.name == "patientID" })?.value {
            let issuer = items.first { $0.name == "issuer" }?.value
            guard id.utf8.count <= 64, (issuer?.utf8.count ?? 0) <= 64,
                let key = services.identity.patient(id, issuer: issuer, tenant: try services.tenant(context).tenant)
            else { throw HTTPFailure(.badRequest, "a Patient ID of 1 to 64 characters is needed") }
            try await services.authorize(context, .read, patient: key)
            wanted = key
        }
        var answers: [String] = []
        // A patient's own jobs are looked up by their key; without one, the newest 1000 the caller may see.
        for id in try await comparisons.queue.jobIDs(kind: Comparisons.kind, subject: wanted?.hex, limit: 1000) {
            guard let job = try await comparisons.queue.job(id) else { continue }
            let asked = try ComparisonRequest(json: job.payload)
            if let wanted {
                guard asked.patient == wanted.hex else { continue }
            } else {
                // Without a patient: the comparisons of the patients this principal may see.
                guard (try? await services.authorize(context, .read, patient: PatientKey(hex: asked.patient))) != nil
                else {
                    context.audit.refusal = nil
                    continue
                }
            }
            answers.append(Self.json(job, asked, base: services.urls.base))
            let catalog = try services.tenant(context).archive.index.catalog()
            for uid in [asked.before, asked.after] {
                if let study = catalog.instances[uid]?.studyInstanceUID, !context.audit.resultStudyUIDs.contains(study)
                {
                    context.audit.resultStudyUIDs.append(study)
                }
            }
        }
        return Responses.text("[" + answers.joined(separator: ",") + "]", contentType: "application/json")
    }

    /// The PDF report of a finished comparison: the Encapsulated PDF it stored, as `application/pdf`.
    func pdf(_ context: FacetRequestContext) async throws -> Response {
        let (job, _, _, record) = try await storedObject(context, action: "comparison report read") {
            $0.pdfInstance
        }
        let (data, _) = try await services.tenant(context).retrieve.bulkValue(record, tag: .encapsulatedDocument)
        var headers = HTTPFields()
        // A download, named by the job only (never by the patient).
        headers[.contentDisposition] = "attachment; filename=\"comparison-\(job.id).pdf\""
        return Responses.bytes(data, contentType: "application/pdf", extra: headers)
    }

    /// The HTML report of a finished comparison, drawn on request from what the job stored (its result and its
    /// change map; nothing identifying is kept outside the encrypted objects). Self-contained: a CSP that allows
    /// only the page's own style (by hash) and `data:` images; no script.
    func html(_ context: FacetRequestContext) async throws -> Response {
        let (job, asked, outcome, record) = try await storedObject(context, action: "comparison report read (HTML)") {
            $0.heatmapInstance
        }
        // Drawn once and kept (in memory only, beside the rendered images, keyed by clinic and job): asking again,
        // or many at once, costs no decryption or drawing.
        let tenant = try services.tenant(context)
        let comparisons = try comparisons(context)
        let page = try await services.renders.value("\(tenant.tenant)|comparison-html|\(job.id)") {
            let (map, _) = try await tenant.retrieve.bulkValue(record, tag: .encapsulatedDocument)
            return Data(try await comparisons.htmlReport(asked, result: outcome.result, changeMap: map).utf8)
        }
        var headers = HTTPFields()
        headers[.contentSecurityPolicy] =
            "default-src 'none'; img-src data:; style-src '\(Comparisons.reportStyleSource)'; base-uri 'none'; form-action 'none'; "
            + "frame-ancestors 'none'; sandbox"
        headers[.cacheControl] = "no-store"
        return Responses.bytes(page, contentType: "text/html; charset=utf-8", extra: headers)
    }

    /// A finished comparison's stored object (`pick` names it in the outcome), read as the caller (decided,
    /// audited).
    func storedObject(
        _ context: FacetRequestContext, action: String, pick: (Comparisons.Outcome) -> String?
    ) async throws -> (Job, ComparisonRequest, Comparisons.Outcome, InstanceRecord) {
        context.audit.action = action
        try services.preauthorize(context, .read)
        let (job, asked) = try await comparison(context)
        try touch(context, asked)
        guard job.status == .done, let result = job.result else {
            throw HTTPFailure(.notFound, "this comparison has no report (\(job.status.rawValue))")
        }
        let outcome = Comparisons.Outcome(decoding: result)
        guard let uid = pick(outcome), let record = try services.tenant(context).archive.index.catalog().instances[uid]
        else { throw HTTPFailure(.notFound, "this comparison has no report") }
        context.audit.touch([record])
        return (job, asked, outcome, record)
    }

    /// The audit event names the captures a comparison is about.
    func touch(_ context: FacetRequestContext, _ asked: ComparisonRequest) throws {
        let catalog = try services.tenant(context).archive.index.catalog()
        context.audit.touch([asked.before, asked.after].compactMap { catalog.instances[$0] })
    }

    /// A job as clients see it. `result` is `facet compare --json`'s object as the worker produced it.
    static func json(_ job: Job, _ asked: ComparisonRequest, base: String) -> String {
        var fields = [
            ("id", Responses.jsonString(job.id)),
            ("status", Responses.jsonString(job.status.rawValue)),
            ("progress", "\(job.status == .done ? 1 : min(max(job.progress, 0), 1))"),
            ("before", Responses.jsonString(asked.before)),
            ("after", Responses.jsonString(asked.after)),
            ("created", Responses.jsonString(Formatting.timestamp(job.created))),
        ]
        if let title = asked.title { fields.append(("title", Responses.jsonString(title))) }
        let outcome = job.status == .done ? job.result.map(Comparisons.Outcome.init(decoding:)) : nil
        fields.append(("result", outcome?.result ?? "null"))
        if let outcome {
            func uid(_ value: String?) -> String { value.map(Responses.jsonString) ?? "null" }
            let pdf = outcome.pdfInstance.map { _ in
                Responses.jsonString("\(base)/api/v1/comparisons/\(job.id)/report.pdf")
            }
            let html = outcome.heatmapInstance.map { _ in
                Responses.jsonString("\(base)/api/v1/comparisons/\(job.id)/report.html")
            }
            fields.append(
                (
                    "report",
                    "{\"pdf\":\(pdf ?? "null"),\"html\":\(html ?? "null"),\"srInstance\":\(uid(outcome.srInstance)),"
                        + "\"pdfInstance\":\(uid(outcome.pdfInstance)),\"heatmapInstance\":\(uid(outcome.heatmapInstance))}"
                ))
        } else {
            fields.append(("report", "null"))
        }
        fields.append(("error", job.failure.map(Responses.jsonString) ?? "null"))
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}
