import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// STOW-RS (PS3.18 10.5): `POST /dicomweb/studies[/{study}]` with `multipart/related; type="application/dicom"`.
/// Parts go through the IngestService (checked, intent audited, committed); the answer names what was stored and
/// what failed, and why.
struct STOWRoutes {
    let services: ServerServices

    func add(to router: Router<FacetRequestContext>) {
        router.post("/dicomweb/studies") { request, context in
            try await store(request, context, study: nil)
        }
        router.post("/dicomweb/studies/:study") { request, context in
            try await store(request, context, study: RequestParts.uid(context, "study"))
        }
    }

    func store(_ request: Request, _ context: FacetRequestContext, study: String?) async throws -> Response {
        let note = context.audit
        note.action = "STOW store"
        note.studyUID = study
        guard let contentType = request.headers[.contentType], let media = MediaType(contentType) else {
            throw HTTPFailure(.unsupportedMediaType, "STOW-RS needs Content-Type multipart/related")
        }
        guard media.essence == "multipart/related" else {
            throw HTTPFailure(.unsupportedMediaType, "STOW-RS takes multipart/related; type=\"application/dicom\"")
        }
        if let type = media.parameters["type"]?.lowercased(), type != "application/dicom" {
            throw HTTPFailure(
                .unsupportedMediaType,
                "only Part-10 parts (type=\"application/dicom\") are accepted; metadata+bulkdata STOW is not supported")
        }
        // Negotiate the response type before reading the body.
        var xml = false
        var acceptable = false
        for entry in RequestParts.accept(request) {
            if Negotiation.covers(entry.media, "application", "dicom+json") && entry.media.type != "multipart"
                || Negotiation.covers(entry.media, "application", "json")
            {
                acceptable = true
                break
            }
            if Negotiation.covers(entry.media, "application", "dicom+xml") {
                xml = true
                acceptable = true
                break
            }
        }
        guard acceptable else {
            throw HTTPFailure(.notAcceptable, "STOW-RS answers application/dicom+json or application/dicom+xml")
        }
        try await services.authorize(context, .store)
        let tenant = try services.tenant(context)
        // Admitted once, before the body is read; its parts then queue on the pool however long the queue.
        try services.pool.admit()
        let parts = try await MultipartBody.read(request, contentType: contentType, services: services)
        defer { for part in parts { part.spool?.remove() } }
        if parts.isEmpty { throw HTTPFailure(.badRequest, "the multipart body has no parts") }

        let sources: [IngestService.Part] = parts.map { part in
            if let type = part.contentType, type.essence != "application/dicom" {
                return .refused(
                    .failed(
                        sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.cannotUnderstand,
                        message: "Content-Type \(type.essence) is not application/dicom"))
            }
            return .bytes { try part.data() }
        }
        let outcomes = await tenant.ingest.store(
            sources, expectedStudy: study, caller: services.caller(context),
            intentRecorded: { note.intentRecorded = true })

        var referenced: [Dataset] = []
        var failed: [Dataset] = []
        var texts: [String] = []
        var anyStored = false
        var onlyConflicts = true
        var warned = false
        // Whether every failure was storage that did not answer (try again later), not a refusal.
        var onlyUnavailable = true
        for (number, outcome) in outcomes.enumerated() {
            switch outcome {
            case .stored(let record, _, let warnings):
                anyStored = true
                var item = Dataset()
                item.set(.referencedSOPClassUID, .UI, record.sopClassUID)
                item.set(.referencedSOPInstanceUID, .UI, record.sopInstanceUID)
                item.set(Tag(0x0008, 0x1190), .UR, services.urls.instance(record))
                if let first = warnings.first {
                    // Warning Reason (0008,1196): one code per item; every warning is in the Warning header.
                    item.set(Tag(0x0008, 0x1196), .US, unsigned: UInt64(first.reason))
                    warned = true
                    for warning in warnings { texts.append("part \(number + 1): \(warning.message)") }
                }
                referenced.append(item)
                note.touch([record])
                services.metrics.add("stored_instances_total", 1)
            case .failed(let sopClass, let sopInstance, let reason, let message, let retryable):
                if !retryable { onlyUnavailable = false }
                failed.append(Self.failureItem(sopClass, sopInstance, reason: reason))
                texts.append("part \(number + 1): \(message)")
                // A readable instance refused for what it says (its class, its study, its patient, a duplicate) is
                // a conflict; an unreadable part or a server failure is not.
                let readableButRefused = reason == FailureReason.cannotUnderstand && sopInstance != nil
                if reason != FailureReason.datasetDoesNotMatchSOPClass && reason != FailureReason.sopClassNotSupported
                    && reason != FailureReason.duplicateSOPInstance && !readableButRefused
                {
                    onlyConflicts = false
                }
                if let sopInstance, !note.instanceUIDs.contains(sopInstance) { note.instanceUIDs.append(sopInstance) }
                services.metrics.add("failed_instances_total", 1)
            }
        }
        var response = Dataset()
        if let study = study ?? note.studyUID {
            response.set(Tag(0x0008, 0x1190), .UR, services.urls.study(study))
        } else {
            response.set(DataElement(Tag(0x0008, 0x1190), .UR, strings: []))
        }
        if !referenced.isEmpty { response.set(Tag(0x0008, 0x1199), sequence: referenced) }
        if !failed.isEmpty { response.set(Tag(0x0008, 0x1198), sequence: failed) }
        let status: HTTPResponse.Status
        if failed.isEmpty {
            // PS3.18 10.5.3: 202 when any instance was stored with a warning.
            status = warned ? .accepted : .ok
        } else if anyStored {
            status = .accepted
        } else {
            // Storage that did not answer: the same request may succeed later (PS3.18 10.5.3: 503 Busy).
            status = onlyUnavailable ? .serviceUnavailable : onlyConflicts ? .conflict : .badRequest
        }
        var headers = RequestParts.varyAccept
        if status == .serviceUnavailable { headers[.retryAfter] = "5" }
        if !texts.isEmpty {
            // The reasons in words, for people reading logs of their client; never PHI.
            headers[.warning] = texts.prefix(20).map(services.urls.warning).joined(separator: ", ")
        }
        if xml {
            return Responses.text(
                DICOMXML.encode(response), status: status, contentType: "application/dicom+xml", extra: headers)
        }
        // One object, not an array: what dcm4chee, Orthanc and Google send and what dicomweb-client parses.
        return Responses.text(
            DICOMJSON.encode(response), status: status, contentType: "application/dicom+json", extra: headers)
    }

    static func failureItem(_ sopClass: String?, _ sopInstance: String?, reason: UInt16) -> Dataset {
        var item = Dataset()
        item.set(DataElement(.referencedSOPClassUID, .UI, strings: sopClass.map { [$0] } ?? []))
        item.set(DataElement(.referencedSOPInstanceUID, .UI, strings: sopInstance.map { [$0] } ?? []))
        item.set(Tag(0x0008, 0x1197), .US, unsigned: UInt64(reason))
        return item
    }
}

/// Reads a multipart request body part by part within the configured limits (parts past the memory budget are
/// spooled encrypted); 400/413/415 with the reason.
enum MultipartBody {
    static func read(_ request: Request, contentType: String, services: ServerServices) async throws
        -> [MultipartPart]
    {
        let settings = services.settings
        let limits = MultipartRelatedReader.Limits(
            maximumPartBytes: settings.maximumPartMiB << 20, maximumBodyBytes: settings.maximumBodyMiB << 20,
            memoryBudget: settings.memoryBudgetMiB << 20)
        let reader: MultipartRelatedReader
        do {
            reader = try MultipartRelatedReader(
                contentType: contentType, temporaryFolder: services.archives.primary.archive.temporaryDirectory,
                limits: limits)
        } catch {
            throw HTTPFailure(HTTPResponse.Status(code: error.status), error.message)
        }
        do {
            for try await buffer in request.body {
                try reader.consume(buffer.readableBytesView)
            }
            return try reader.finish()
        } catch let error as MultipartError {
            reader.removeFiles()
            throw HTTPFailure(HTTPResponse.Status(code: error.status), error.message)
        } catch {
            reader.removeFiles()
            throw HTTPFailure(.badRequest, "the request body could not be read")
        }
    }
}
