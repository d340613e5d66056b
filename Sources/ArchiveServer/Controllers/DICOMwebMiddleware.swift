import Archive
import DICOMCodec
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// One audited request's facts, filled in by the handler.
final class AuditNote: @unchecked Sendable {
    var action = ""
    /// The client's address (for events a handler writes itself, such as a store's intent).
    var address = "unknown"
    /// A change's intent is on record (fsynced before anything was committed): the outcome event that follows
    /// cannot unmake the change, so failing to write it does not turn the answer into a 503.
    var intentRecorded = false
    var studyUID: String?
    var seriesUIDs: [String] = []
    var instanceUIDs: [String] = []
}

/// Serves `/dicomweb/...` (QIDO-RS, WADO-RS, STOW-RS, capabilities) and `/api/v1/...` (clinic uploads), answers
/// CORS preflights, and appends one audit event per request. Handlers are thin: the work is in `ArchiveService`,
/// `SearchService` and DICOMCodec.
struct DICOMwebMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    let settings: ServerSettings
    let service: ArchiveService
    let metrics: Metrics
    let logger: Logger
    let search: SearchService
    let renders = RenderCache()
    /// Where blocking work runs (DCMTK, decryption, fsync), never on Swift's cooperative threads.
    let pool: BlockingPool

    init(settings: ServerSettings, service: ArchiveService, metrics: Metrics, logger: Logger, pool: BlockingPool) {
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.logger = logger
        self.pool = pool
        search = SearchService(
            index: service.index, baseURL: settings.baseURL + "/dicomweb", maximumResults: settings.maximumResults)
    }

    var dicomwebBase: String { settings.baseURL + "/dicomweb" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        let family: String
        if path == "/dicomweb" || path.hasPrefix("/dicomweb/") {
            family = "dicomweb"
        } else if path.hasPrefix("/api/v1/") {
            family = "api"
        } else {
            return try await next(request, context)
        }
        let started = DispatchTime.now()
        var response: Response
        let note = AuditNote()
        note.address = context.remoteAddress?.ipAddress ?? "unknown"
        do {
            response = try await route(request, path: path, note: note)
        } catch let failure as HTTPFailure {
            response = Responses.failure(failure)
        } catch is BlockingPool.Busy {
            var headers = HTTPFields()
            headers[.retryAfter] = "1"
            response = Responses.failure(
                HTTPFailure(.serviceUnavailable, "the server is busy; try again shortly"), extra: headers)
        } catch let failure as ArchiveError where failure.code == .integrity {
            logger.error("integrity failure", metadata: ["reason": "\(failure.message)"])
            response = Responses.failure(HTTPFailure(.internalServerError, "stored data failed verification"))
        } catch {
            logger.error("request failed", metadata: ["error": "\(type(of: error))"])
            response = Responses.failure(HTTPFailure(.internalServerError, "internal error"))
        }
        if !note.action.isEmpty {
            let address = context.remoteAddress?.ipAddress ?? "unknown"
            let status = response.status.code
            let outcome = status < 300 ? "success" : (status < 500 ? "failure-\(status)" : "error-\(status)")
            // Changes are fsynced before the answer; reads are written before it and fsynced within 50 ms.
            let changes = request.method == .post
            let event = AuditEvent(
                actor: "anonymous", address: address, action: note.action, studyUID: note.studyUID,
                seriesUIDs: note.seriesUIDs, instanceUIDs: note.instanceUIDs, outcome: outcome)
            let audit = service.audit
            do {
                if changes {
                    // An fsync: on the blocking pool, never refused (the change is made).
                    try await pool.run(alwaysQueue: true) { try audit.append(event, durability: .immediate) }
                } else {
                    try audit.append(event, durability: .batched)
                }
            } catch {
                logger.error("audit append failed")
                if note.intentRecorded {
                    // The change is made and its intent is on record: the answer tells the truth about it.
                    response.headers[.warning] = [
                        response.headers[.warning],
                        "299 \(dicomwebBase): \"the outcome could not be written to the audit log\"",
                    ].compactMap { $0 }.joined(separator: ", ")
                } else {
                    // Nothing is sent whose access cannot be recorded.
                    response = Responses.failure(
                        HTTPFailure(.serviceUnavailable, "the audit log cannot be written"))
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        metrics.request(family, status: Int(response.status.code), seconds: seconds)
        return response
    }

    // MARK: routing

    func route(_ request: Request, path: String, note: AuditNote) async throws -> Response {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if segments.first == "api" {
            guard segments.count >= 3, segments[1] == "v1" else { throw HTTPFailure(.notFound, "no such resource") }
            if request.method == .post, segments.count == 3, segments[2] == "photos" || segments[2] == "scans" {
                return try await upload(request, kind: segments[2], note: note)
            }
            if request.method == .get, segments.count == 5 || segments.count == 6, segments[2] == "instances",
                segments[4] == "originals"
            {
                let number = segments.count == 6 ? Int(segments[5]) ?? 0 : nil
                return try await originals(segments[3], number: number, note: note)
            }
            throw HTTPFailure(.notFound, "no such resource")
        }
        let rest = Array(segments.dropFirst())
        if request.method == .options {
            guard rest.isEmpty else { throw HTTPFailure(.notFound, "capabilities are at the service root") }
            return Capabilities.response()
        }
        if request.method == .post {
            if rest == ["studies"] { return try await store(request, study: nil, note: note) }
            if rest.count == 2 && rest[0] == "studies" {
                guard UID.isValid(rest[1]) else { throw HTTPFailure(.badRequest, "study UID in the URL is not a UID") }
                return try await store(request, study: rest[1], note: note)
            }
            throw HTTPFailure(.methodNotAllowed, "only /studies and /studies/{study} accept POST")
        }
        guard request.method == .get || request.method == .head else {
            throw HTTPFailure(.methodNotAllowed, "method not allowed")
        }
        // Searches.
        switch rest.count {
        case 1 where rest[0] == "studies": return try searchResponse(request, .init(level: .study), note)
        case 1 where rest[0] == "series": return try searchResponse(request, .init(level: .series), note)
        case 1 where rest[0] == "instances": return try searchResponse(request, .init(level: .instance), note)
        case 3 where rest[0] == "studies" && rest[2] == "series":
            return try searchResponse(request, .init(level: .series, study: try uid(rest[1])), note)
        case 3 where rest[0] == "studies" && rest[2] == "instances":
            return try searchResponse(request, .init(level: .instance, study: try uid(rest[1])), note)
        case 5 where rest[0] == "studies" && rest[2] == "series" && rest[4] == "instances":
            return try searchResponse(
                request, .init(level: .instance, study: try uid(rest[1]), series: try uid(rest[3])), note)
        default: break
        }
        // Retrieves: studies/{s}[/series/{se}[/instances/{i}]][/metadata|/rendered|/thumbnail|/bulkdata/..|/frames/..]
        guard rest.count >= 2, rest[0] == "studies" else { throw HTTPFailure(.notFound, "no such resource") }
        var target = Target(study: try uid(rest[1]))
        var index = 2
        if rest.count >= 4 && rest[2] == "series" {
            target.series = try uid(rest[3])
            index = 4
            if rest.count >= 6 && rest[4] == "instances" {
                target.instance = try uid(rest[5])
                index = 6
            }
        }
        let tail = Array(rest[index...])
        note.studyUID = target.study
        let query = try queryItems(request)
        switch tail.count {
        case 0:
            note.action = "WADO retrieve"
            return try await retrieveInstances(request, target, note)
        case 1 where tail[0] == "metadata":
            note.action = "WADO metadata"
            return try await retrieveMetadata(request, target, note)
        case 1 where tail[0] == "rendered":
            note.action = "WADO rendered"
            return try await rendered(request, target, frames: nil, query: query, thumbnail: false, note)
        case 1 where tail[0] == "thumbnail":
            note.action = "WADO thumbnail"
            return try await rendered(request, target, frames: nil, query: query, thumbnail: true, note)
        case 2 where tail[0] == "bulkdata" && target.instance != nil:
            note.action = "WADO bulkdata"
            return try await bulkdata(request, target, tag: tail[1], note)
        case 2 where tail[0] == "frames" && target.instance != nil:
            note.action = "WADO frames"
            return try await frames(request, target, list: try frameList(tail[1]), note)
        case 3 where tail[0] == "frames" && target.instance != nil && (tail[2] == "rendered" || tail[2] == "thumbnail"):
            note.action = tail[2] == "rendered" ? "WADO rendered" : "WADO thumbnail"
            return try await rendered(
                request, target, frames: try frameList(tail[1]), query: query, thumbnail: tail[2] == "thumbnail", note)
        default:
            throw HTTPFailure(.notFound, "no such resource")
        }
    }

    func uid(_ text: String) throws -> String {
        guard UID.isValid(text) else { throw HTTPFailure(.badRequest, "a UID in the URL is not a valid UID") }
        return text
    }

    /// Query parameters, percent-decoded (`+` is a space), in order; malformed encodings are refused.
    func queryItems(_ request: Request) throws -> [(name: String, value: String)] {
        guard let raw = request.uri.query, !raw.isEmpty else { return [] }
        var items: [(String, String)] = []
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) throws -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                guard let decoded = spaced.removingPercentEncoding else {
                    throw HTTPFailure(.badRequest, "a query parameter is not valid percent-encoded UTF-8")
                }
                return decoded
            }
            let name = try decode(parts[0])
            let value = parts.count > 1 ? try decode(parts[1]) : ""
            // Repeated includefield parameters and comma lists mean the same.
            items.append((name, value))
        }
        return items
    }

    func accept(_ request: Request) -> [AcceptEntry] {
        Negotiation.entries(request.headers[values: .accept])
    }

    // MARK: QIDO-RS

    func searchResponse(_ request: Request, _ resource: SearchService.Resource, _ note: AuditNote) throws -> Response {
        note.action = "QIDO \(resource.level)"
        note.studyUID = resource.study
        if let series = resource.series { note.seriesUIDs = [series] }
        var vary = HTTPFields()
        vary[.vary] = "Accept"
        // Negotiate first: 406 before any work.
        guard let format = Negotiation.datasetFormat(accept(request)) else {
            return Responses.failure(
                HTTPFailure(.notAcceptable, "QIDO-RS answers application/dicom+json or multipart/related XML"),
                extra: vary)
        }
        let query: Query
        do {
            query = try Query.parse(try queryItems(request))
        } catch let error as DICOMCoreError {
            return Responses.failure(HTTPFailure(.badRequest, error.message), extra: vary)
        }
        let result = try search.search(query, resource)
        var headers = vary
        var warnings: [String] = []
        if query.fuzzyMatching {
            warnings.append(
                "299 \(dicomwebBase): \"The fuzzymatching parameter is not supported. Only literal matching has been performed.\""
            )
        }
        if result.truncated {
            warnings.append("299 \(dicomwebBase): \"There are additional results that can be requested\"")
        }
        if !warnings.isEmpty { headers[.warning] = warnings.joined(separator: ", ") }
        if format == .xml {
            return Responses.multipart(
                type: "application/dicom+xml",
                parts: result.datasets.map { ("application/dicom+xml", nil, Data(DICOMXML.encode($0).utf8)) },
                extra: headers)
        }
        return Responses.text(DICOMJSON.encode(result.datasets), contentType: "application/dicom+json", extra: headers)
    }

    // MARK: STOW-RS

    func store(_ request: Request, study: String?, note: AuditNote) async throws -> Response {
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
        for entry in accept(request) {
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
        // Admitted once, before the body is read; its parts then queue on the pool however long the queue.
        try pool.admit()
        let parts = try await readMultipart(request, contentType: contentType)
        defer { for part in parts { part.spool?.remove() } }

        var referenced: [Dataset] = []
        var failed: [Dataset] = []
        var failureTexts: [String] = []
        var anyStored = false
        var onlyConflicts = true
        // Parts are stored a few at a time (their fsyncs overlap), window by window: each window's instances are
        // checked, then named in an audit intent that is fsynced before any of them is committed, so no stored
        // instance is ever unaudited. The answer keeps the order of the parts.
        var outcomes: [StoreOutcome] = []
        var start = 0
        while start < parts.count {
            let window = Array(parts[start..<min(parts.count, start + Self.concurrentParts)])
            start += window.count
            let checked = await withTaskGroup(of: (Int, PrepareResult).self) { group -> [PrepareResult] in
                for (index, part) in window.enumerated() {
                    group.addTask { (index, await self.preparePart(part, study: study)) }
                }
                var results = [PrepareResult?](repeating: nil, count: window.count)
                for await (index, result) in group { results[index] = result }
                return results.compactMap { $0 }
            }
            let ready = checked.compactMap { result -> PreparedStore? in
                if case .ready(let prepared) = result { return prepared }
                return nil
            }
            var intentWritten = true
            if !ready.isEmpty {
                let intent = AuditEvent(
                    actor: "anonymous", address: note.address, action: "STOW store (intent)",
                    studyUID: study ?? ready[0].studyInstanceUID,
                    seriesUIDs: Array(Set(ready.map(\.seriesInstanceUID))).sorted(),
                    instanceUIDs: ready.map(\.sopInstanceUID), outcome: "intent")
                let audit = service.audit
                do {
                    try await pool.run(alwaysQueue: true) { try audit.append(intent, durability: .immediate) }
                    note.intentRecorded = true
                } catch {
                    logger.error("audit append failed")
                    intentWritten = false
                }
            }
            let service = self.service
            let intentOnRecord = intentWritten
            let committed = await withTaskGroup(of: (Int, StoreOutcome).self) { group -> [StoreOutcome] in
                for (index, result) in checked.enumerated() {
                    group.addTask {
                        switch result {
                        case .finished(let outcome):
                            return (index, outcome)
                        case .ready(let prepared) where !intentOnRecord:
                            return (
                                index,
                                .failed(
                                    sopClassUID: prepared.sopClassUID, sopInstanceUID: prepared.sopInstanceUID,
                                    reason: FailureReason.outOfResources,
                                    message: "not stored: the audit log cannot be written")
                            )
                        case .ready(let prepared):
                            let outcome =
                                (try? await self.pool.run(alwaysQueue: true) { service.commit(prepared) })
                                ?? .failed(
                                    sopClassUID: prepared.sopClassUID, sopInstanceUID: prepared.sopInstanceUID,
                                    reason: FailureReason.processingFailure, message: "the instance could not be stored"
                                )
                            return (index, outcome)
                        }
                    }
                }
                var results = [StoreOutcome?](repeating: nil, count: checked.count)
                for await (index, outcome) in group { results[index] = outcome }
                return results.compactMap { $0 }
            }
            outcomes += committed
        }
        var warned = false
        for (number, outcome) in outcomes.enumerated() {
            switch outcome {
            case .stored(let record, _, let warnings):
                anyStored = true
                var item = Dataset()
                item.set(.referencedSOPClassUID, .UI, record.sopClassUID)
                item.set(.referencedSOPInstanceUID, .UI, record.sopInstanceUID)
                item.set(Tag(0x0008, 0x1190), .UR, instanceURL(record))
                if let first = warnings.first {
                    // Warning Reason (0008,1196): one code per item; every warning is in the Warning header.
                    item.set(Tag(0x0008, 0x1196), .US, unsigned: UInt64(first.reason))
                    warned = true
                    for warning in warnings { failureTexts.append("part \(number + 1): \(warning.message)") }
                }
                referenced.append(item)
                note.instanceUIDs.append(record.sopInstanceUID)
                if !note.seriesUIDs.contains(record.seriesInstanceUID) {
                    note.seriesUIDs.append(record.seriesInstanceUID)
                }
                if note.studyUID == nil { note.studyUID = record.studyInstanceUID }
                metrics.add("stored_instances_total", 1)
            case .failed(let sopClass, let sopInstance, let reason, let message):
                failed.append(Self.failureItem(sopClass, sopInstance, reason: reason))
                failureTexts.append("part \(number + 1): \(message)")
                // A readable instance refused for what it says (its class, its study, its patient, a duplicate) is a
                // conflict; an unreadable part or a server failure is not.
                let readableButRefused = reason == FailureReason.cannotUnderstand && sopInstance != nil
                if reason != FailureReason.datasetDoesNotMatchSOPClass && reason != FailureReason.sopClassNotSupported
                    && reason != FailureReason.duplicateSOPInstance && !readableButRefused
                {
                    onlyConflicts = false
                }
                if let sopInstance { note.instanceUIDs.append(sopInstance) }
                metrics.add("failed_instances_total", 1)
            }
        }
        if parts.isEmpty { throw HTTPFailure(.badRequest, "the multipart body has no parts") }
        var response = Dataset()
        if let study = study ?? note.studyUID {
            response.set(Tag(0x0008, 0x1190), .UR, "\(dicomwebBase)/studies/\(study)")
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
            status = onlyConflicts ? .conflict : .badRequest
        }
        var headers = HTTPFields()
        headers[.vary] = "Accept"
        if !failureTexts.isEmpty {
            // The reasons in words, for people reading logs of their client; never PHI.
            headers[.warning] = failureTexts.prefix(20).map {
                "299 \(dicomwebBase): \"\($0.replacingOccurrences(of: "\"", with: "'"))\""
            }.joined(separator: ", ")
        }
        if xml {
            return Responses.text(
                DICOMXML.encode(response), status: status, contentType: "application/dicom+xml", extra: headers)
        }
        // One object, not an array: what dcm4chee, Orthanc and Google send and what dicomweb-client parses.
        return Responses.text(
            DICOMJSON.encode(response), status: status, contentType: "application/dicom+json", extra: headers)
    }

    /// How many parts of one STOW request are stored at the same time.
    static let concurrentParts = 2

    /// One part checked by the store pipeline (a part that is not `application/dicom` fails with 0xC000); nothing
    /// is written yet.
    func preparePart(_ part: MultipartPart, study: String?) async -> PrepareResult {
        if let type = part.contentType, type.essence != "application/dicom" {
            return .finished(
                .failed(
                    sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.cannotUnderstand,
                    message: "Content-Type \(type.essence) is not application/dicom"))
        }
        let service = self.service
        do {
            // A part waits for a pool thread however long the queue: the request is already accepted.
            return try await pool.run(alwaysQueue: true) { service.prepare(try part.data(), expectedStudy: study) }
        } catch {
            return .finished(
                .failed(
                    sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.processingFailure,
                    message: "the part could not be read back"))
        }
    }

    static func failureItem(_ sopClass: String?, _ sopInstance: String?, reason: UInt16) -> Dataset {
        var item = Dataset()
        item.set(DataElement(.referencedSOPClassUID, .UI, strings: sopClass.map { [$0] } ?? []))
        item.set(DataElement(.referencedSOPInstanceUID, .UI, strings: sopInstance.map { [$0] } ?? []))
        item.set(Tag(0x0008, 0x1197), .US, unsigned: UInt64(reason))
        return item
    }

    func readMultipart(_ request: Request, contentType: String) async throws -> [MultipartPart] {
        let limits = MultipartRelatedReader.Limits(
            maximumPartBytes: settings.maximumPartMiB << 20, maximumBodyBytes: settings.maximumBodyMiB << 20,
            memoryBudget: settings.memoryBudgetMiB << 20)
        let reader: MultipartRelatedReader
        do {
            reader = try MultipartRelatedReader(
                contentType: contentType, temporaryFolder: service.temporaryDirectory, limits: limits)
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
