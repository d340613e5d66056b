import Archive
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The marketing export (issue 12 §3): `POST /api/v1/exports` with `{"channel", "filters": {"treatment", "region",
/// "provider", "from", "to"}}` → `200 application/zip`, streamed photo by photo: only the photos the consent rule
/// lets go to that channel at this moment, as plain JPEGs (no DICOM, no EXIF/XMP/GPS/IPTC) named by number,
/// pseudonym, region, view and timing, each with the practice's name drawn on it and the invisible mark (practice,
/// pseudonym, export id), and `manifest.json` without PHI. The audit event names the export, the channel, the
/// number of photos and the consents used. Physicians and practice managers may export.
struct ExportRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.post("/api/v1/exports") { request, context in try await export(request, context) }
    }

    func export(_ request: Request, _ context: FacetRequestContext) async throws -> Response {
        context.audit.action = "export"
        try services.preauthorize(context, .marketingExport)
        let body = try await ClinicSupport.body(request, limit: 16 << 10)
        let fields = try ClinicJSON.object(body, what: "an export", allowed: ["channel", "filters"])
        guard let name = fields["channel"] as? String, let channel = Consent.Channel(rawValue: name.lowercased()) else {
            let known = Consent.Channel.allCases.map(\.rawValue).joined(separator: ", ")
            throw HTTPFailure(.badRequest, "channel is one of: \(known)")
        }
        var filters = MarketingExport.Filters()
        if let raw = fields["filters"], !(raw is NSNull) {
            guard let object = raw as? [String: Any] else {
                throw HTTPFailure(.badRequest, "filters must be an object")
            }
            filters = try MarketingExport.Filters.decode(object)
        }
        let tenant = try services.tenant(context)
        let records = try ClinicSupport(services: services).records(context)
        let identity = services.identity
        let tenantName = tenant.tenant
        let exporter = MarketingExport(
            archive: tenant.archive, records: records, keyOf: { identity.patient(of: $0, tenant: tenantName) })
        let created = Date()
        let plan = try await exporter.plan(channel: channel, filters: filters, at: created)
        context.audit.action =
            "export \(plan.id) (channel \(channel.rawValue), \(plan.items.count) photos, \(plan.withheld) withheld, "
            + "consents \(plan.consentIDs.joined(separator: ","))"
        // One export discloses photos of many patients: the event names each study (and so each patient, by keyed
        // hash) and every photo, not only the first one's study.
        context.audit.instanceUIDs = plan.items.map(\.record.sopInstanceUID)
        context.audit.resultStudyUIDs = Array(Set(plan.items.map(\.record.studyInstanceUID))).sorted()
        let practice = services.settings.practiceName
        let retrieve = tenant.retrieve
        var headers = HTTPFields()
        headers[.contentType] = "application/zip"
        headers[.contentDisposition] = "attachment; filename=\"facet-export-\(plan.id.prefix(8)).zip\""
        headers[.cacheControl] = "no-store"
        let stream = ResponseBody { writer in
            var zip = ZipWriter(date: created)
            var files: [(name: String, item: MarketingExport.Item, sha256: String)] = []
            for (number, item) in plan.items.enumerated() {
                let jpeg = try await retrieve.watermarkedJPEG(
                    item.record,
                    payload: MarketingExport.payload(practice: practice, pseudonym: item.pseudonym, id: plan.id),
                    visible: "© \(practice)")
                let name = MarketingExport.fileName(item, number: number + 1)
                files.append((name, item, MarketingExport.sha256(jpeg)))
                try await writer.write(ByteBuffer(bytes: try zip.add(name, jpeg)))
            }
            let manifest = MarketingExport.manifest(plan, practice: practice, files: files, created: created)
            try await writer.write(ByteBuffer(bytes: try zip.add("manifest.json", manifest)))
            try await writer.write(ByteBuffer(bytes: zip.finish()))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: stream)
    }
}
