import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// Patients, their timeline and before/after pairs (issue 12 §1):
/// - `GET /api/v1/patients?name=&patientID=&birthDate=&limit=&offset=`: the patients the caller may see (a medical
///   assistant: their care team's), by name; `POST /api/v1/patients` registers one before any image names them;
/// - `GET /api/v1/patients/{patientID}` (`?issuer=`): one patient;
/// - `GET /api/v1/patients/{patientID}/timeline?region=&view=&service=&from=&to=`: captures and treatments in order,
///   per region;
/// - `GET /api/v1/patients/{patientID}/compare?before=DATE&after=DATE&region=&view=` and
///   `GET /api/v1/comparisons/suggest?patientID=&region=&view=`: the before/after pair, the treatments between
///   them and the days elapsed.
/// Patient IDs are turned into keyed hashes at once; audit events name the key, never the ID.
struct PatientRoutes {
    let services: ServerServices
    var clinic: ClinicSupport { ClinicSupport(services: services) }

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/patients") { request, context in try await list(request, context) }
        router.post("/api/v1/patients") { request, context in try await register(request, context) }
        router.get("/api/v1/patients/:patient") { request, context in try await read(request, context) }
        router.get("/api/v1/patients/:patient/timeline") { request, context in try await timeline(request, context) }
        router.get("/api/v1/patients/:patient/compare") { request, context in try await compare(request, context) }
        router.get("/api/v1/comparisons/suggest") { request, context in try await suggest(request, context) }
    }

    func list(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "patients search"
        try services.preauthorize(context, .search)
        let items = try RequestParts.queryItems(request)
        func value(_ name: String) -> String? { items.last { $0.name == name }?.value }
        let known: Set = ["name", "patientID", "birthDate", "limit", "offset", "issuer"]
        if let unknown = items.first(where: { !known.contains($0.name) }) {
            throw HTTPFailure(
                .badRequest,
                "unknown parameter \(unknown.name.prefix(40)); known: \(known.sorted().joined(separator: ", "))")
        }
        let limit = try RequestParts.number(value("limit"), "limit", default: 100, range: 1...1000)
        let offset = try RequestParts.number(value("offset"), "offset", default: 0, range: 0...Int(Int32.max))
        let birthDate = try value("birthDate").map { d throws(ArchiveError) in
            try ClinicTerms.date(d, field: "birthDate")
        }
        if let id = value("patientID"), id.utf8.count > 64 { throw HTTPFailure(.badRequest, "patientID is too long") }
        if let name = value("name"), name.count > 64 { throw HTTPFailure(.badRequest, "name is too long") }
        let principal = try ServerServices.principal(context)
        let scope = try await services.identity.searchScope(for: principal)
        let tenant = try services.tenant(context)
        let catalog = tenant.archive.index.catalog()
        var visible: [PatientSummary] = []
        for summary in try await clinic.patients(context).values {
            let seen = summary.studyUIDs.contains { catalog.studies[$0].map(scope.visible) ?? false }
            if seen {
                visible.append(summary)
            } else if summary.studyUIDs.isEmpty {
                // Registered only: no study to match, so the policy decides on the patient itself.
                let resource = try await services.identity.access.resource(
                    tenant: tenant.tenant, patient: summary.key, for: principal)
                if services.identity.access.policy.decide(principal, .read, resource) == .allow {
                    visible.append(summary)
                }
            }
        }
        if let issuer = value("issuer") { visible = visible.filter { ($0.issuer ?? "") == issuer } }
        let found = PatientDirectory.search(
            visible, namePrefix: value("name"), patientID: value("patientID"), birthDate: birthDate)
        let page = Array(found.dropFirst(offset).prefix(limit))
        if page.contains(where: { scope.emergency.contains($0.key) }) { context.audit.emergency = true }
        context.audit.action = "patients search (\(page.count) of \(found.count))"
        context.audit.resultStudyUIDs = page.flatMap(\.studyUIDs)
        struct Answer: Encodable {
            var total: Int
            var offset: Int
            var patients: [ClinicOut.Patient]
        }
        return try ClinicSupport.json(
            Answer(total: found.count, offset: offset, patients: page.map(ClinicOut.Patient.init)))
    }

    func register(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "patient register"
        try services.preauthorize(context, .recordWrite)
        let body = try await ClinicSupport.body(request, limit: 16 << 10)
        let fields = try ClinicJSON.object(
            body, what: "a patient", allowed: ["patientID", "issuer", "name", "birthDate", "sex"])
        guard let id = try ClinicJSON.string(fields, "patientID")?.trimmingCharacters(in: .whitespaces), !id.isEmpty
        else { throw HTTPFailure(.badRequest, "a patient needs \"patientID\"") }
        let issuer = try ClinicTerms.text(try ClinicJSON.string(fields, "issuer"), field: "issuer", limit: 64)
        let key = try clinic.key(id, issuer: issuer, context)
        try await services.authorize(context, .recordWrite, patient: key)
        context.audit.action = "patient register (patient \(key.hex))"
        var registration = PatientRegistration(patientID: id, issuer: issuer, name: nil, birthDate: nil, sex: nil)
        if let name = try ClinicJSON.string(fields, "name") {
            guard name.utf8.count <= 64 * 5, !name.contains("\\"),
                let text = try ClinicTerms.text(name, field: "name", limit: 320)
            else { throw HTTPFailure(.badRequest, "name must be a DICOM person name (Family^Given)") }
            registration.name = text
        }
        if let date = try ClinicJSON.string(fields, "birthDate") {
            registration.birthDate = try ClinicTerms.date(date, field: "birthDate")
        }
        if let sex = try ClinicJSON.string(fields, "sex") {
            guard ["M", "F", "O"].contains(sex.uppercased()) else { throw HTTPFailure(.badRequest, "sex is M, F or O") }
            registration.sex = sex.uppercased()
        }
        if try await clinic.patients(context)[key] != nil {
            throw HTTPFailure(.conflict, "the patient exists already")
        }
        let records = try clinic.records(context)
        _ = try await records.write(
            .patient, id: key.hex, patient: key.hex, value: registration, actor: context.audit.actor,
            expectedVersion: 0)
        guard let summary = try await clinic.patients(context)[key] else {
            throw HTTPFailure(.notFound, "no such patient")
        }
        var headers = HTTPFields()
        headers[.location] =
            "\(services.urls.base)/api/v1/patients/\(Self.pathSegment(id))"
            + (issuer.map { "?issuer=\(Self.pathSegment($0))" } ?? "")
        return try ClinicSupport.json(ClinicOut.Patient(summary), status: .created, extra: headers)
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(
                charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        ) ?? ""
    }

    func read(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "patient read"
        let summary = try await clinic.patient(request, context, .read)
        context.audit.action = "patient read (patient \(summary.key.hex))"
        context.audit.resultStudyUIDs = summary.studyUIDs
        return try ClinicSupport.json(ClinicOut.Patient(summary))
    }

    /// The filters of the timeline and the pairs: region and view as tags are kept (lower case), dates checked.
    struct Filters {
        var region: String?
        var view: String?
        var service: String?
        var from: String?
        var to: String?
    }

    func filters(_ request: Request, allowed: Set<String>) throws -> (Filters, [String: String]) {
        var values: [String: String] = [:]
        for item in try RequestParts.queryItems(request) {
            guard allowed.contains(item.name) || item.name == "issuer" else {
                throw HTTPFailure(
                    .badRequest,
                    "unknown parameter \(item.name.prefix(40)); known: \(allowed.sorted().joined(separator: ", "))")
            }
            values[item.name] = item.value
        }
        var filters = Filters()
        filters.region = try values["region"].map { v throws(ArchiveError) in try ClinicTerms.term(v, field: "region") }
        filters.view = try values["view"].map { v throws(ArchiveError) in try InstanceTags.view(v) }
        filters.service = values["service"].map { $0.lowercased().trimmingCharacters(in: .whitespaces) }
        filters.from = try values["from"].map { v throws(ArchiveError) in try ClinicTerms.date(v, field: "from") }
        filters.to = try values["to"].map { v throws(ArchiveError) in try ClinicTerms.date(v, field: "to") }
        return (filters, values)
    }

    func timeline(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "timeline read"
        let summary = try await clinic.patient(request, context, .read)
        let (filters, _) = try filters(request, allowed: ["region", "view", "service", "from", "to"])
        context.audit.action = "timeline read (patient \(summary.key.hex))"
        let records = try clinic.records(context)
        var treatments = try await records.list(.treatment, patient: summary.key.hex, as: Treatment.self)
        var captures = try clinic.directory(context).captures(
            of: summary, tags: try await records.tags(patient: summary.key.hex))
        func inRange(_ date: String?) -> Bool {
            guard let date else { return filters.from == nil && filters.to == nil }
            return date >= (filters.from ?? "") && date <= (filters.to ?? "9999-99-99")
        }
        captures = captures.filter { inRange($0.date) && PatientDirectory.matches($0, region: nil, view: filters.view) }
        treatments = treatments.filter { inRange($0.value.date) }
        if let service = filters.service {
            treatments = treatments.filter { $0.value.service.lowercased().contains(service) }
            let ids = Set(treatments.map(\.id))
            let regions = Set(treatments.flatMap(\.value.regions))
            captures = captures.filter { capture in
                capture.tags.treatment.map(ids.contains) ?? false
                    || [capture.tags.region, capture.tags.subregion].contains { $0.map(regions.contains) ?? false }
            }
        }
        struct Entry: Encodable {
            var capture: ClinicOut.Capture?
            var treatment: ClinicOut.Treatment?
            var date: String

            func encode(to encoder: any Encoder) throws {
                if let capture { try capture.encode(to: encoder) } else { try treatment?.encode(to: encoder) }
            }
        }
        var byRegion: [String: [Entry]] = [:]
        for capture in captures {
            let region = capture.tags.region ?? "unspecified"
            byRegion[region, default: []].append(Entry(capture: ClinicOut.Capture(capture), date: capture.date ?? ""))
        }
        for treatment in treatments {
            for region in treatment.value.regions.isEmpty ? ["unspecified"] : treatment.value.regions {
                byRegion[region, default: []].append(
                    Entry(treatment: ClinicOut.Treatment(treatment, type: "treatment"), date: treatment.value.date))
            }
        }
        struct Region: Encodable {
            var region: String
            var entries: [Entry]
        }
        struct Answer: Encodable {
            var patientKey: String
            var regions: [Region]
        }
        var regions: [Region] = []
        for (region, entries) in byRegion
        where filters.region == nil || region == filters.region
            || entries.contains(where: { $0.capture?.subregion == filters.region })
        {
            let kept =
                region == filters.region || filters.region == nil
                ? entries : entries.filter { $0.capture?.subregion == filters.region || $0.treatment != nil }
            // Same day: treatments before the captures of that day (a capture on a treatment day documents it);
            // then by time.
            let sorted = kept.enumerated().sorted { a, b in
                (a.element.date, a.element.treatment == nil ? 1 : 0, a.element.capture?.time ?? "", a.offset)
                    < (b.element.date, b.element.treatment == nil ? 1 : 0, b.element.capture?.time ?? "", b.offset)
            }.map(\.element)
            regions.append(Region(region: region, entries: sorted))
        }
        regions.sort { $0.region < $1.region }
        context.audit.resultStudyUIDs = summary.studyUIDs
        return try ClinicSupport.json(Answer(patientKey: summary.key.hex, regions: regions))
    }

    func compare(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparison pair read"
        let summary = try await clinic.patient(request, context, .read)
        let (filters, values) = try filters(request, allowed: ["before", "after", "region", "view"])
        guard let beforeText = values["before"], let afterText = values["after"] else {
            throw HTTPFailure(.badRequest, "compare needs before=YYYY-MM-DD and after=YYYY-MM-DD")
        }
        let before = try ClinicTerms.date(beforeText, field: "before")
        let after = try ClinicTerms.date(afterText, field: "after")
        guard before < after else { throw HTTPFailure(.badRequest, "before is a day earlier than after") }
        return try await pairAnswer(summary, context) { captures, treatments in
            PatientDirectory.pair(
                captures, beforeDate: before, afterDate: after, region: filters.region, view: filters.view,
                treatments: treatments)
        }
    }

    func suggest(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "comparison suggestion"
        try services.preauthorize(context, .read)
        let (filters, values) = try filters(request, allowed: ["patientID", "region", "view"])
        guard let id = values["patientID"] else { throw HTTPFailure(.badRequest, "suggest needs patientID") }
        let key = try clinic.key(id, issuer: values["issuer"], context)
        try await services.authorize(context, .read, patient: key)
        guard let summary = try await clinic.patients(context)[key] else {
            throw HTTPFailure(.notFound, "no such patient")
        }
        return try await pairAnswer(summary, context) { captures, treatments in
            PatientDirectory.suggest(captures, region: filters.region, view: filters.view, treatments: treatments)
        }
    }

    func pairAnswer(
        _ summary: PatientSummary, _ context: FacetRequestContext,
        _ choose: ([Capture], [(id: String, treatment: Treatment)]) -> PatientDirectory.Pair?
    ) async throws -> Response {
        context.audit.action += " (patient \(summary.key.hex))"
        let records = try clinic.records(context)
        let captures = try clinic.directory(context).captures(
            of: summary, tags: try await records.tags(patient: summary.key.hex))
        let treatments = try await records.list(.treatment, patient: summary.key.hex, as: Treatment.self)
        guard
            let pair = choose(
                captures, treatments.map { (id: $0.id, treatment: $0.value) })
        else { throw HTTPFailure(.notFound, "no two captures of this patient match") }
        let byID = Dictionary(uniqueKeysWithValues: treatments.map { ($0.id, $0) })
        let catalog = try services.tenant(context).archive.index.catalog()
        context.audit.touch([pair.before, pair.after].compactMap { catalog.instances[$0.sopInstanceUID] })
        return try ClinicSupport.json(
            ClinicOut.Pair(
                patientKey: summary.key.hex, before: ClinicOut.Capture(pair.before),
                after: ClinicOut.Capture(pair.after), daysElapsed: pair.days,
                treatmentsBetween: pair.treatments.compactMap { byID[$0.id].map { ClinicOut.Treatment($0) } }))
    }
}
