import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// FHIR R4 for EMRs (issue 11 §4), under `/fhir/r4`: `metadata` (the CapabilityStatement, open like a DICOMweb
/// capabilities document), `Patient?identifier=`, `Patient/{id}`, `ImagingStudy?patient=|subject=|
/// subject:identifier=|started=|modality=|identifier=`, `ImagingStudy/{id}`, `Endpoint/{id}` (the DICOMweb base),
/// `DiagnosticReport?patient=|subject=` and `DiagnosticReport/{id}` for finished comparisons. Answers are
/// `application/fhir+json`; searches are searchset Bundles paged with `_count` (default 50, at most 500) and
/// `_offset`; errors are OperationOutcomes. The same tokens, access policy (a medical assistant sees their care
/// team's patients) and audit as DICOMweb. An unknown search parameter is refused (400) rather than ignored: a
/// misspelt filter must not widen a search over patients.
struct FHIRRoutes {
    let services: ServerServices
    static let contentType = "application/fhir+json; charset=utf-8"
    static let prefix = "/fhir/r4"
    static let common: Set<String> = ["_count", "_offset", "_format", "_pretty"]

    func add(to router: Router<FacetRequestContext>) {
        router.get("/fhir/r4/metadata") { request, _ in try answer(request) { capability() } }
        router.get("/fhir/r4/Patient") { request, context in
            try await answering(request, context) { try await patients(request, context) }
        }
        router.get("/fhir/r4/Patient/:id") { request, context in
            try await answering(request, context) { try await patient(context) }
        }
        router.get("/fhir/r4/ImagingStudy") { request, context in
            try await answering(request, context) { try await studies(request, context) }
        }
        router.get("/fhir/r4/ImagingStudy/:id") { request, context in
            try await answering(request, context) { try await study(context) }
        }
        router.get("/fhir/r4/Endpoint") { request, context in
            try await answering(request, context) {
                context.audit.action = "FHIR Endpoint search"
                try services.preauthorize(context, .search)
                try check(request, allowed: [])
                return FHIRMapping.searchset(
                    [FHIRMapping.endpoint(dicomweb: services.urls.dicomweb)], total: 1, base: base,
                    selfURL: base + "/Endpoint", nextURL: nil)
            }
        }
        router.get("/fhir/r4/Endpoint/:id") { request, context in
            try await answering(request, context) {
                context.audit.action = "FHIR Endpoint read"
                try services.preauthorize(context, .search)
                guard context.parameters.get("id") == FHIRMapping.endpointID else {
                    throw HTTPFailure(.notFound, "no such Endpoint")
                }
                return FHIRMapping.endpoint(dicomweb: services.urls.dicomweb)
            }
        }
        router.get("/fhir/r4/DiagnosticReport") { request, context in
            try await answering(request, context) { try await reports(request, context) }
        }
        router.get("/fhir/r4/DiagnosticReport/:id") { request, context in
            try await answering(request, context) { try await report(context) }
        }
    }

    var base: String { services.urls.base + Self.prefix }

    // MARK: answers

    /// A JSON answer, or 406 when the client accepts no JSON.
    func answer(_ request: Request, _ body: () throws -> [String: Any]) throws -> Response {
        try acceptable(request)
        return Responses.text(FHIRMapping.text(try body()), contentType: Self.contentType)
    }

    func acceptable(_ request: Request) throws {
        let format = try RequestParts.queryItems(request).first { $0.name == "_format" }?.value.lowercased()
        if let format, !["json", "application/json", "application/fhir+json"].contains(format) {
            throw HTTPFailure(.notAcceptable, "only JSON is served (_format=json)")
        }
        let accepted = request.headers[values: .accept].joined(separator: ",").lowercased()
        if !accepted.isEmpty && !accepted.contains("json") && !accepted.contains("*/*") {
            throw HTTPFailure(.notAcceptable, "only application/fhir+json is served")
        }
    }

    /// Runs a route and answers an error as an OperationOutcome with the status the DICOMweb routes would give.
    func answering(
        _ request: Request, _ context: FacetRequestContext, _ body: () async throws -> [String: Any]
    ) async throws -> Response {
        do {
            try acceptable(request)
            return Responses.text(FHIRMapping.text(try await body()), contentType: Self.contentType)
        } catch {
            let generic = AuditMiddleware.response(for: error, logger: services.logger, urls: services.urls)
            let message: String
            switch error {
            case _ where generic.status.code >= 500:
                // The archive's own troubles stay in its log: the client learns only that it may try again.
                message = AuditMiddleware.fhirMessage(generic.status.code)
            case let failure as HTTPFailure: message = failure.message
            case let failure as ArchiveError: message = failure.message
            default: message = "the request could not be answered"
            }
            return Self.outcome(generic, message: message)
        }
    }

    /// An error answer as an OperationOutcome, keeping its status and its Retry-After and WWW-Authenticate.
    static func outcome(_ response: Response, message: String) -> Response {
        let code =
            switch response.status.code {
            case 400, 422: "invalid"
            case 401: "login"
            case 403: "forbidden"
            case 404: "not-found"
            case 405, 406, 415: "not-supported"
            case 409: "conflict"
            case 413: "too-costly"
            case 503: "transient"
            default: "exception"
            }
        var headers = HTTPFields()
        for name in [HTTPField.Name.retryAfter, .wwwAuthenticate] {
            if let value = response.headers[name] { headers[name] = value }
        }
        return Responses.text(
            FHIRMapping.text(FHIRMapping.outcome(code: code, diagnostics: message)), status: response.status,
            contentType: contentType, extra: headers)
    }

    /// Refuses a search parameter the route does not know.
    func check(_ request: Request, allowed: Set<String>) throws {
        for item in try RequestParts.queryItems(request)
        where !allowed.contains(item.name) && !Self.common.contains(item.name) {
            throw HTTPFailure(.badRequest, "unknown search parameter: \(item.name.prefix(64))")
        }
    }

    /// A page of a search: `_count` (default 50, at most 500) from `_offset`.
    func page(_ request: Request, _ resources: [[String: Any]], path: String) throws -> [String: Any] {
        let items = try RequestParts.queryItems(request)
        func number(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = items.first(where: { $0.name == name })?.value else { return fallback }
            guard let value = Int(text), value >= 0 else {
                throw HTTPFailure(.badRequest, "\(name) must be a non-negative integer")
            }
            return value
        }
        let count = min(try number("_count", 50), 500)
        // Bounded, so that offset + count cannot overflow (a search never has a billion results here).
        let offset = min(try number("_offset", 0), 1_000_000_000)
        let slice = offset < resources.count ? Array(resources[offset..<min(resources.count, offset + count)]) : []
        let kept = items.filter { $0.name != "_offset" && $0.name != "_count" }
        func url(offset: Int) -> String {
            var components = URLComponents()
            components.queryItems =
                kept.map { URLQueryItem(name: $0.name, value: $0.value) } + [
                    URLQueryItem(name: "_count", value: String(count)),
                    URLQueryItem(name: "_offset", value: String(offset)),
                ]
            return base + path + "?" + (components.percentEncodedQuery ?? "")
        }
        let next = count > 0 && offset + count < resources.count ? url(offset: offset + count) : nil
        return FHIRMapping.searchset(
            slice, total: resources.count, base: base, selfURL: url(offset: offset), nextURL: next)
    }

    // MARK: CapabilityStatement

    func capability() -> [String: Any] {
        func resource(_ type: String, _ parameters: [(String, String)]) -> [String: Any] {
            [
                "type": type, "interaction": [["code": "read"], ["code": "search-type"]],
                "searchParam": parameters.map { ["name": $0.0, "type": $0.1] },
            ]
        }
        return [
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-12-01", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"],
            "software": ["name": "Facet"],
            "implementation": ["description": "Facet archive", "url": base],
            "rest": [
                [
                    "mode": "server",
                    "security": [
                        "service": [
                            [
                                "coding": [
                                    [
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "OAuth",
                                    ]
                                ]
                            ]
                        ],
                        "description": "Bearer tokens of Facet (POST /api/v1/auth/login or /api/v1/auth/token) "
                            + "or of the configured identity provider",
                    ],
                    "resource": [
                        resource("Patient", [("identifier", "token"), ("_count", "number")]),
                        resource(
                            "ImagingStudy",
                            [
                                ("patient", "reference"), ("subject", "reference"), ("started", "date"),
                                ("modality", "token"), ("identifier", "token"), ("_count", "number"),
                            ]),
                        resource("Endpoint", []),
                        resource("DiagnosticReport", [("patient", "reference"), ("subject", "reference")]),
                    ],
                ]
            ],
        ]
    }

    // MARK: Patient

    /// The visible patients of the clinic, each once, keyed by their hash, with the attributes of their latest study.
    func visiblePatients(_ context: FacetRequestContext) async throws -> [(key: String, study: StudyRecord)] {
        let tenant = try services.tenant(context)
        let scope = try await services.identity.searchScope(for: try ServerServices.principal(context))
        let emergency = Set(scope.emergency.map(\.hex))
        var latest: [String: StudyRecord] = [:]
        for study in tenant.archive.index.catalog().studies.values where scope.visible(study) {
            guard let key = services.identity.patient(of: study, tenant: tenant.tenant)?.hex else { continue }
            if let known = latest[key],
                (known.attributes.string(.studyDate) ?? "", known.studyInstanceUID)
                    >= (study.attributes.string(.studyDate) ?? "", study.studyInstanceUID)
            {
                continue
            }
            latest[key] = study
        }
        // Patients seen only under break-the-glass make the answer emergency access.
        if latest.keys.contains(where: emergency.contains) { context.audit.emergency = true }
        return latest.map { ($0.key, $0.value) }.sorted { $0.key < $1.key }
    }

    func patients(_ request: Request, _ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR Patient search"
        try services.preauthorize(context, .search)
        try check(request, allowed: ["identifier", "_id"])
        let items = try RequestParts.queryItems(request)
        var found = try await visiblePatients(context)
        if let identifier = items.first(where: { $0.name == "identifier" })?.value {
            let value = Self.tokenValue(identifier)
            found = found.filter { $0.study.attributes.string(.patientID) == value }
        }
        if let id = items.first(where: { $0.name == "_id" })?.value { found = found.filter { $0.key == id } }
        context.audit.resultStudyUIDs = found.map(\.study.studyInstanceUID)
        return try page(
            request, found.map { FHIRMapping.patient(id: $0.key, attributes: $0.study.attributes) }, path: "/Patient")
    }

    func patient(_ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR Patient read"
        try services.preauthorize(context, .read)
        let id = context.parameters.get("id") ?? ""
        guard let key = PatientKey(hex: id) else { throw HTTPFailure(.notFound, "no such Patient") }
        try await services.authorize(context, .read, patient: key)
        guard let found = try await visiblePatients(context).first(where: { $0.key == id }) else {
            throw HTTPFailure(.notFound, "no such Patient")
        }
        context.audit.studyUID = found.study.studyInstanceUID
        return FHIRMapping.patient(id: id, attributes: found.study.attributes)
    }

    /// `[system|]value` → value.
    static func tokenValue(_ text: String) -> String {
        guard let bar = text.firstIndex(of: "|") else { return text }
        return String(text[text.index(after: bar)...])
    }

    /// `Patient/ID` or `ID` → ID.
    static func reference(_ text: String, type: String) -> String {
        text.hasPrefix(type + "/") ? String(text.dropFirst(type.count + 1)) : text
    }

    // MARK: ImagingStudy

    func studies(_ request: Request, _ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR ImagingStudy search"
        try services.preauthorize(context, .search)
        try check(
            request,
            allowed: [
                "patient", "subject", "subject:identifier", "patient:identifier", "started", "modality", "identifier",
                "_id",
            ])
        let items = try RequestParts.queryItems(request)
        func values(_ name: String) -> [String] { items.filter { $0.name == name }.map(\.value) }
        let tenant = try services.tenant(context)
        let scope = try await services.identity.searchScope(for: try ServerServices.principal(context))
        let catalog = tenant.archive.index.catalog()
        // Each occurrence of a parameter must match (AND); the comma-separated values of one occurrence are
        // alternatives (OR), as R4 search says.
        func groups(_ names: [String], _ value: (String) -> String) -> [[String]] {
            names.flatMap(values).map { $0.split(separator: ",").map { value(String($0)) } }
        }
        let patientGroups = groups(["patient", "subject"]) { Self.reference($0, type: "Patient") }
        let patientIDGroups = groups(["subject:identifier", "patient:identifier"], Self.tokenValue)
        let modalityGroups = groups(["modality"], Self.tokenValue)
        let uidGroups = groups(["identifier", "_id"]) {
            Self.tokenValue($0).replacingOccurrences(of: "urn:oid:", with: "")
        }
        let started = values("started")
        for value in started where FHIRMapping.dateMatches("2000-01-01", value) == nil {
            throw HTTPFailure(.badRequest, "started must be a date search such as ge2026-01-01")
        }
        var matched: [StudyRecord] = []
        for study in catalog.studies.values where scope.visible(study) {
            let key = services.identity.patient(of: study, tenant: tenant.tenant)?.hex
            let accession = study.attributes.string(.accessionNumber)
            guard patientGroups.allSatisfy({ $0.contains { $0 == key } }),
                patientIDGroups.allSatisfy({ $0.contains { $0 == study.attributes.string(.patientID) } }),
                uidGroups.allSatisfy({ $0.contains { $0 == study.studyInstanceUID || $0 == accession } })
            else { continue }
            if !started.isEmpty {
                guard let day = study.attributes.string(.studyDate).flatMap(FHIRMapping.date),
                    started.allSatisfy({ FHIRMapping.dateMatches(day, $0) == true })
                else { continue }
            }
            if !modalityGroups.isEmpty {
                let present = Set(study.seriesUIDs.compactMap { catalog.series[$0]?.attributes.string(.modality) })
                guard modalityGroups.allSatisfy({ $0.contains(where: present.contains) }) else { continue }
            }
            matched.append(study)
        }
        matched.sort {
            ($0.attributes.string(.studyDate) ?? "", $0.studyInstanceUID)
                > ($1.attributes.string(.studyDate) ?? "", $1.studyInstanceUID)
        }
        let answer = try page(
            request,
            matched.map { study in
                FHIRMapping.imagingStudy(
                    study, catalog: catalog,
                    patientID: services.identity.patient(of: study, tenant: tenant.tenant)?.hex)
            }, path: "/ImagingStudy")
        let shown = (answer["entry"] as? [[String: Any]] ?? []).compactMap {
            ($0["resource"] as? [String: Any])?["id"] as? String
        }
        context.audit.resultStudyUIDs = shown
        // An answer naming a patient seen only under break-the-glass is emergency access, as for QIDO.
        let emergency = Set(scope.emergency.map(\.hex))
        if !emergency.isEmpty {
            context.audit.emergency = shown.contains { uid in
                catalog.studies[uid].flatMap { services.identity.patient(of: $0, tenant: tenant.tenant) }.map {
                    emergency.contains($0.hex)
                } ?? false
            }
        }
        return answer
    }

    func study(_ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR ImagingStudy read"
        try services.preauthorize(context, .read)
        let tenant = try services.tenant(context)
        let catalog = tenant.archive.index.catalog()
        guard let id = context.parameters.get("id"), let study = catalog.studies[id] else {
            throw HTTPFailure(.notFound, "no such ImagingStudy")
        }
        context.audit.studyUID = id
        try await services.authorize(context, .read, study: id)
        return FHIRMapping.imagingStudy(
            study, catalog: catalog, patientID: services.identity.patient(of: study, tenant: tenant.tenant)?.hex)
    }

    // MARK: DiagnosticReport

    /// Finished comparisons as DiagnosticReports, with their patient's key.
    func finishedComparisons(_ context: FacetRequestContext, patient: String?) async throws -> [[String: Any]] {
        guard let comparisons = try services.tenant(context).comparisons else { return [] }
        let catalog = try services.tenant(context).archive.index.catalog()
        var reports: [[String: Any]] = []
        for id in try await comparisons.queue.jobIDs(kind: Comparisons.kind, subject: patient, limit: 1000) {
            guard let job = try await comparisons.queue.job(id), job.status == .done, let result = job.result else {
                continue
            }
            let asked = try ComparisonRequest(json: job.payload)
            if let patient, asked.patient != patient { continue }
            guard (try? await services.authorize(context, .read, patient: PatientKey(hex: asked.patient))) != nil
            else {
                context.audit.refusal = nil
                continue
            }
            let studies = [asked.before, asked.after].compactMap { catalog.instances[$0]?.studyInstanceUID }
            context.audit.resultStudyUIDs += studies.filter { !context.audit.resultStudyUIDs.contains($0) }
            reports.append(
                FHIRMapping.diagnosticReport(
                    id: id, patientID: asked.patient, studies: studies, issued: job.created, title: asked.title,
                    result: Comparisons.Outcome(decoding: result).result,
                    pdfURL: pdfURL(id, Comparisons.Outcome(decoding: result))))
        }
        return reports
    }

    /// Where a finished comparison's PDF is read (the same token opens it), when it made one.
    func pdfURL(_ id: String, _ outcome: Comparisons.Outcome) -> String? {
        outcome.pdfInstance == nil ? nil : "\(services.urls.base)/api/v1/comparisons/\(id)/report.pdf"
    }

    func reports(_ request: Request, _ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR DiagnosticReport search"
        try services.preauthorize(context, .search)
        try check(request, allowed: ["patient", "subject"])
        let items = try RequestParts.queryItems(request)
        let patient = items.first { $0.name == "patient" || $0.name == "subject" }.map {
            Self.reference($0.value, type: "Patient")
        }
        if let patient {
            try await services.authorize(context, .read, patient: PatientKey(hex: patient))
        }
        return try page(request, try await finishedComparisons(context, patient: patient), path: "/DiagnosticReport")
    }

    func report(_ context: FacetRequestContext) async throws -> [String: Any] {
        context.audit.action = "FHIR DiagnosticReport read"
        try services.preauthorize(context, .read)
        let id = context.parameters.get("id") ?? ""
        guard let comparisons = try services.tenant(context).comparisons, UUID(uuidString: id) != nil,
            let job = try await comparisons.queue.job(id), job.kind == Comparisons.kind, job.status == .done
        else { throw HTTPFailure(.notFound, "no such DiagnosticReport") }
        let asked = try ComparisonRequest(json: job.payload)
        try await services.authorize(context, .read, patient: PatientKey(hex: asked.patient))
        let catalog = try services.tenant(context).archive.index.catalog()
        let studies = [asked.before, asked.after].compactMap { catalog.instances[$0]?.studyInstanceUID }
        context.audit.resultStudyUIDs = studies
        return FHIRMapping.diagnosticReport(
            id: id, patientID: asked.patient, studies: studies, issued: job.created, title: asked.title,
            result: Comparisons.Outcome(decoding: job.result ?? Data()).result,
            pdfURL: pdfURL(id, Comparisons.Outcome(decoding: job.result ?? Data())))
    }
}
