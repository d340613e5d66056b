import Archive
import Foundation
import HTTPTypes
import Hummingbird

/// Soft delete (issue 9 §3): `DELETE` on a WADO-RS study, series or instance URL with `{"reason": "..."}`, for a
/// physician. The instances leave searches and retrievals at once (404 afterwards) but nothing is erased: the index
/// keeps them with the reason and the actor, sealed, and their blobs stay (the trash, `TrashRoutes`). The audit trail
/// gets an intent naming every instance before the change and the outcome after it; the reason, which may name the
/// patient, stays out of the audit log. `GET /api/v1/deletions` lists what was deleted, when, by whom and why, for the
/// auditor and the practice manager.
struct DeleteRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        for (path, depth) in WADORoutes.levels {
            router.delete(RouterPath(stringLiteral: path)) { request, context in
                try await delete(request, context, try WADORoutes.target(context, depth: depth))
            }
        }
        router.get("/api/v1/deletions") { _, context in try await deletions(context) }
    }

    func deletions(_ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "deletions read"
        try services.preauthorize(context, .auditRead)
        let index = try services.tenant(context).archive.index
        let deleted = try await index.deletions()
        let items = deleted.map { item in
            "{\"studyInstanceUID\":\(Responses.jsonString(item.studyInstanceUID)),"
                + "\"seriesInstanceUID\":\(Responses.jsonString(item.seriesInstanceUID)),"
                + "\"sopInstanceUID\":\(Responses.jsonString(item.sopInstanceUID)),"
                + "\"deleted\":\"\(Formatting.timestamp(item.deletion.date))\","
                + "\"actor\":\(Responses.jsonString(item.deletion.actor)),"
                + "\"reason\":\(Responses.jsonString(item.deletion.reason))}"
        }
        return Responses.text("[" + items.joined(separator: ",") + "]", contentType: "application/json")
    }

    func delete(_ request: Request, _ context: FacetRequestContext, _ target: RetrieveService.Target) async throws
        -> Response
    {
        let note = context.audit
        note.action = "delete"
        try services.preauthorize(context, .delete)
        let body = try await AuthRoutes.body(request)
        guard let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let reason = fields["reason"] as? String
        else { throw HTTPFailure(.badRequest, "a deletion is {\"reason\": \"...\"}") }
        let tenant = try services.tenant(context)
        let records = try tenant.retrieve.instances(target)
        note.touch(records)
        try await services.authorize(context, .delete, study: target.study)
        let deleted = try await tenant.ingest.softDelete(
            records, reason: reason, caller: services.caller(context), intentRecorded: { note.intentRecorded = true })
        return Responses.text(
            "{\"deleted\":" + String(deleted.count) + ",\"sopInstanceUIDs\":["
                + deleted.map { Responses.jsonString($0.sopInstanceUID) }.joined(separator: ",") + "]}",
            contentType: "application/json")
    }
}
