import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// The trash of soft-deleted instances (issue 12 §4): `GET /api/v1/trash` lists them — for a physician, those of
/// patients in their care still restorable (30 days from the deletion); for a practice manager, every one with
/// its state (`restorable`, `retained` by the retention rule until `keptUntil`, `held` by a legal hold, `due` for
/// disposal at the next sweep) — and `POST /api/v1/trash/{id}/restore`, for a physician within the 30 days, puts
/// the instance back (WADO-RS and QIDO-RS serve it again). A sweep (`TrashSweeper`) disposes of what is due.
/// Entries name patients by keyed hash only; the deletion's reason is shown as it was given.
struct TrashRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.get("/api/v1/trash") { _, context in try await list(context) }
        router.post("/api/v1/trash/:id/restore") { _, context in try await restore(context) }
    }

    struct Entry: Encodable {
        var id: String
        var sopInstanceUID: String
        var seriesInstanceUID: String
        var studyInstanceUID: String
        var patientKey: String?
        var deleted: String
        var actor: String
        var reason: String
        var restorableUntil: String
        var status: String
        var keptUntil: String?
        var rule: String?

        init(_ entry: TrashEntry) {
            let item = entry.item
            id = String(item.seq)
            sopInstanceUID = item.instance.sopInstanceUID
            seriesInstanceUID = item.instance.seriesInstanceUID
            studyInstanceUID = item.instance.studyInstanceUID
            patientKey = item.patient
            deleted = Formatting.timestamp(item.instance.deletion.date)
            actor = item.instance.deletion.actor
            reason = item.instance.deletion.reason
            restorableUntil = Formatting.timestamp(entry.restorableUntil)
            status = entry.status.rawValue
            keptUntil = entry.keptUntil
            rule = entry.rule
        }
    }

    private func archive(_ context: FacetRequestContext) throws -> ArchiveService {
        let archive = try services.tenant(context).archive
        guard archive.hasTrash else {
            throw HTTPFailure(.notImplemented, "the trash is built for the embedded index only")
        }
        return archive
    }

    /// Whether the caller may `.delete` (and so restore) for `patient`, without recording a refusal.
    private func mayRestore(_ context: FacetRequestContext, patient: String?) async throws -> Bool {
        let principal = try ServerServices.principal(context)
        let tenant = try services.tenant(context).tenant
        let key = patient.flatMap { PatientKey(hex: $0) }
        let resource = try await services.identity.access.resource(tenant: tenant, patient: key, for: principal)
        return services.identity.access.policy.decide(principal, .delete, resource).isAllowed
    }

    func list(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "trash read"
        let principal = try ServerServices.principal(context)
        let manager = AccessPolicy().decideRole(principal, .retention, tenant: try services.tenant(context).tenant)
            .isAllowed
        if !manager { try services.preauthorize(context, .delete) }
        let archive = try archive(context)
        let records = try services.tenant(context).records
        var shown: [Entry] = []
        var allowed: [String: Bool] = [:]
        for entry in try await archive.trashEntries(records: records, now: Date()) {
            if !manager {
                guard entry.status == .restorable else { continue }
                let patient = entry.item.patient ?? ""
                if allowed[patient] == nil {
                    allowed[patient] = try await mayRestore(context, patient: entry.item.patient)
                }
                guard allowed[patient] == true else { continue }
            }
            shown.append(Entry(entry))
        }
        context.audit.resultStudyUIDs = Array(Set(shown.map(\.studyInstanceUID))).sorted()
        context.audit.action = "trash read (\(shown.count) entries)"
        return try ClinicSupport.json(shown)
    }

    func restore(_ context: FacetRequestContext) async throws -> Response {
        let note = context.audit
        note.action = "trash restore"
        try services.preauthorize(context, .delete)
        let archive = try archive(context)
        guard let id = context.parameters.get("id").flatMap({ Int64($0) }) else {
            throw HTTPFailure(.notFound, "no such instance in the trash")
        }
        let entry = try await archive.trashEntries(records: try services.tenant(context).records, now: Date())
            .first { $0.item.seq == id }
        guard let entry else { throw HTTPFailure(.notFound, "no such instance in the trash") }
        note.studyUID = entry.item.instance.studyInstanceUID
        note.seriesUIDs = [entry.item.instance.seriesInstanceUID]
        note.instanceUIDs = [entry.item.instance.sopInstanceUID]
        try await services.authorize(context, .delete, patient: entry.item.patient.flatMap { PatientKey(hex: $0) })
        let record = try await archive.restoreFromTrash(seq: id, now: Date())
        struct Out: Encodable {
            var restored: String
            var studyInstanceUID: String
            var seriesInstanceUID: String
            var sopInstanceUID: String
            var retrieveURL: String
        }
        return try ClinicSupport.json(
            Out(
                restored: Formatting.timestamp(Date()), studyInstanceUID: record.studyInstanceUID,
                seriesInstanceUID: record.seriesInstanceUID, sopInstanceUID: record.sopInstanceUID,
                retrieveURL: services.urls.instance(record)))
    }
}
