import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// The audit trail for the privacy officer (issue 12 §5): `GET /api/v1/audit?from=&to=&patientID=&issuer=&user=
/// &limit=&offset=` (auditors and practice managers) → the clinic's entries in order, as JSON, or as DICOM audit
/// messages (PS3.15 A.5) with `format=dicom` or `Accept: application/xml`. The patient filter takes a Patient ID
/// and matches its keyed hash; the answer names patients by that hash only. Reading the trail is itself audited.
struct AuditRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/audit") { request, context in try await read(request, context) }
    }

    struct Out: Encodable {
        var sequence: Int
        var time: String
        var actor: String
        var address: String
        var action: String
        var outcome: String
        var study: String?
        var series: [String]
        var instances: [String]
        var patients: [String]
        var resultStudies: [String]
        var request: String?
        var detail: String?

        init(_ entry: AuditEntry) {
            sequence = entry.sequence
            time = entry.time
            actor = entry.actor
            address = entry.address
            action = entry.action
            outcome = entry.outcome
            study = entry.study
            series = entry.series
            instances = entry.instances
            patients = entry.patients.sorted()
            resultStudies = entry.resultStudies
            request = entry.request
            detail = entry.detail
        }
    }

    func read(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "audit read"
        try services.preauthorize(context, .auditRead)
        var values: [String: String] = [:]
        let known: Set = ["from", "to", "patientID", "issuer", "user", "limit", "offset", "format"]
        for item in try RequestParts.queryItems(request) {
            guard known.contains(item.name) else {
                throw HTTPFailure(
                    .badRequest,
                    "unknown parameter \(item.name.prefix(40)); known: \(known.sorted().joined(separator: ", "))")
            }
            values[item.name] = item.value
        }
        func instant(_ name: String) throws -> String? {
            guard let text = values[name] else { return nil }
            if text.count == 10 { return try ClinicTerms.date(text, field: name) }
            guard let date = Formatting.instant(text) else {
                throw HTTPFailure(.badRequest, "\(name) is a date (YYYY-MM-DD) or an ISO 8601 instant")
            }
            return Formatting.timestamp(date)
        }
        var filter = AuditFilter(from: try instant("from"), to: try instant("to"), user: values["user"])
        let tenant = try services.tenant(context)
        if let id = values["patientID"] {
            filter.patient = try ClinicSupport(services: services).key(id, issuer: values["issuer"], context).hex
        }
        let limit = try RequestParts.number(values["limit"], "limit", default: 1000, range: 1...10_000)
        let offset = try RequestParts.number(values["offset"], "offset", default: 0, range: 0...Int(Int32.max))
        let dicom =
            values["format"] == "dicom"
            || (values["format"] == nil && RequestParts.accept(request).first?.media.subtype == "xml")
        if let format = values["format"], !["json", "dicom"].contains(format) {
            throw HTTPFailure(.badRequest, "format is json or dicom")
        }
        let matching = try await tenant.archive.audit.entries(matching: filter)
        let page = Array(matching.dropFirst(offset).prefix(limit))
        context.audit.action =
            "audit read (\(page.count) of \(matching.count) entries"
            + (filter.patient.map { ", patient \($0)" } ?? "") + (dicom ? ", DICOM" : "") + ")"
        if dicom {
            return Responses.text(
                DICOMAuditMessage.document(page, source: "facet/\(tenant.tenant)"),
                contentType: "application/xml; charset=utf-8")
        }
        struct Answer: Encodable {
            var total: Int
            var offset: Int
            var entries: [Out]
        }
        return try ClinicSupport.json(Answer(total: matching.count, offset: offset, entries: page.map(Out.init)))
    }
}
