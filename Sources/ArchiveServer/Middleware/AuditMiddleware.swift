import Archive
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// One audited request's facts: the routes fill in what they touched; the audit middleware writes the event.
final class AuditNote: @unchecked Sendable {
    var action = ""
    /// Who asked: `anonymous` until authentication finds a principal (then `tenant/username`).
    var actor = "anonymous"
    /// Why the access policy refused, for the event (the answer says it too).
    var refusal: String?
    var requestID = ""
    /// The client's address (for events a route writes itself, such as a store's intent).
    var address = "unknown"
    /// The principal's clinic, whose audit log gets the event (the data folder's own before authentication).
    var tenant: TenantArchive?
    /// The request read a patient under a break-the-glass grant: the event says it was emergency access.
    var emergency = false
    var studyUID: String?
    var seriesUIDs: [String] = []
    var instanceUIDs: [String] = []
    /// The studies a search answered with.
    var resultStudyUIDs: [String] = []
    /// A change's intent is on record (fsynced before anything was committed): the outcome event that follows
    /// cannot unmake the change, so failing to write it does not turn the answer into a 503.
    var intentRecorded = false

    /// Records the instances an answer is about.
    func touch(_ records: [InstanceRecord]) {
        if studyUID == nil { studyUID = records.first?.studyInstanceUID }
        seriesUIDs = Array(Set(seriesUIDs + records.map(\.seriesInstanceUID))).sorted()
        instanceUIDs += records.map(\.sopInstanceUID).filter { !instanceUIDs.contains($0) }
    }
}

/// Wraps every `/dicomweb` and `/api` request, whatever happens to it: a thrown error becomes its answer (404,
/// 400, 406, 503 ...) here, and one event is appended to the audit log for every request — refused, malformed and
/// failed ones included — naming the route's action (or the method and route when the route never got to say),
/// the resources by UID and the outcome, never a name or an ID. Changes are fsynced before the answer; reads are
/// written before it and fsynced within 50 ms. A request whose event cannot be written gets 503 and no data
/// (unless it is a change whose intent is on record: then the answer stays true, with a Warning).
struct AuditMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    let services: ServerServices

    static let unaudited: Set<String> = ["/health/live", "/health/ready", "/metrics"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // Fail closed: everything is audited but the health checks and the metrics (no PHI, polled often).
        guard !Self.unaudited.contains(request.uri.path) else { return try await next(request, context) }
        let note = context.audit
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = Self.response(for: error, logger: services.logger, urls: services.urls)
        }
        if request.uri.path.hasPrefix(FHIRRoutes.prefix + "/"), response.status.code >= 400,
            response.headers[.contentType]?.hasPrefix("application/fhir+json") != true
        {
            // FHIR clients read errors as OperationOutcomes, also those of the middleware (401, 503) and the router.
            response = FHIRRoutes.outcome(response, message: Self.fhirMessage(response.status.code))
        }
        let status = response.status.code
        let outcome = status < 300 ? "success" : (status < 500 ? "failure-\(status)" : "error-\(status)")
        var action =
            note.action.isEmpty ? "\(request.method.rawValue) \(context.endpointPath ?? "unknown route")" : note.action
        if note.refusal != nil { action = "access denied: \(action)" }
        if note.emergency { action += " (emergency access under break-the-glass)" }
        let archive = (note.tenant ?? services.archives.primary).archive
        var event = AuditEvent(
            actor: note.actor, address: note.address, action: action, studyUID: note.studyUID,
            seriesUIDs: note.seriesUIDs, instanceUIDs: note.instanceUIDs, outcome: outcome, detail: note.refusal,
            patient: note.studyUID.flatMap(archive.patientKey(forStudy:)), request: note.requestID)
        if !note.resultStudyUIDs.isEmpty {
            event.resultStudyUIDs = note.resultStudyUIDs
            event.resultPatients = Array(Set(note.resultStudyUIDs.compactMap(archive.patientKey(forStudy:)))).sorted()
        }
        let audit = archive.audit
        let finished = event
        let changes = request.method != .get && request.method != .head && request.method != .options
        do {
            // A change's event is on stable storage before the answer (never refused: the change is made).
            try await audit.record(finished, durability: changes ? .immediate : .batched)
            if status < 300 { await services.publish(note) }
        } catch {
            services.logger.error("audit append failed", metadata: ["request": "\(note.requestID)"])
            if note.intentRecorded {
                // The change is made and its intent is on record: the answer tells the truth about it.
                response.headers[.warning] = [
                    response.headers[.warning],
                    services.urls.warning("the outcome could not be written to the audit log"),
                ].compactMap { $0 }.joined(separator: ", ")
            } else {
                // Nothing is sent whose access cannot be recorded.
                var headers = HTTPFields()
                headers[.retryAfter] = "5"
                response = Responses.failure(
                    HTTPFailure(.serviceUnavailable, "the audit log cannot be written"), extra: headers)
            }
        }
        return response
    }

    /// The answer a thrown error deserves. Messages are the errors' own, which never carry PHI.
    static func response(for error: any Error, logger: Logger?, urls: URLs) -> Response {
        switch error {
        case let failure as HTTPFailure:
            return Responses.failure(failure)
        case is BlockingPool.Busy:
            return busy()
        case let failure as ArchiveError:
            switch failure.code {
            case .busy: return busy()
            case .unavailable:
                logger?.error("storage unavailable", metadata: ["reason": "\(failure.message)"])
                var headers = HTTPFields()
                headers[.retryAfter] = "5"
                return Responses.failure(
                    HTTPFailure(.serviceUnavailable, "the archive's storage does not answer; try again shortly"),
                    extra: headers)
            case .notFound: return Responses.failure(HTTPFailure(.notFound, failure.message))
            case .notAcceptable:
                return Responses.failure(HTTPFailure(.notAcceptable, failure.message), extra: RequestParts.varyAccept)
            case .invalidRequest: return Responses.failure(HTTPFailure(.badRequest, failure.message))
            case .unsupportedMediaType: return Responses.failure(HTTPFailure(.unsupportedMediaType, failure.message))
            case .unprocessable: return Responses.failure(HTTPFailure(.unprocessableContent, failure.message))
            case .tooLarge: return Responses.failure(HTTPFailure(.contentTooLarge, failure.message))
            case .audit: return Responses.failure(HTTPFailure(.serviceUnavailable, failure.message))
            case .invalidCredentials, .invalidToken: return unauthorized(failure.message)
            case .forbidden: return Responses.failure(HTTPFailure(.forbidden, failure.message))
            case .conflict: return Responses.failure(HTTPFailure(.conflict, failure.message))
            case .invalidInput: return Responses.failure(HTTPFailure(.badRequest, failure.message))
            case .integrity:
                logger?.error("integrity failure", metadata: ["reason": "\(failure.message)"])
                return Responses.failure(HTTPFailure(.internalServerError, "stored data failed verification"))
            default:
                logger?.error("request failed", metadata: ["reason": "\(failure.message)"])
                return Responses.failure(HTTPFailure(.internalServerError, "internal error"))
            }
        case let failure as any HTTPResponseError:
            let status = failure.status
            return Responses.failure(
                HTTPFailure(status, status == .notFound ? "no such resource" : status.reasonPhrase))
        default:
            logger?.error("request failed", metadata: ["error": "\(type(of: error))"])
            return Responses.failure(HTTPFailure(.internalServerError, "internal error"))
        }
    }

    /// 401 with the challenge of RFC 6750.
    static func unauthorized(_ message: String) -> Response {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer realm=\"facet\""
        return Responses.failure(HTTPFailure(.unauthorized, message), extra: headers)
    }

    /// The words of an OperationOutcome for an error answered before a FHIR route ran.
    static func fhirMessage(_ status: Int) -> String {
        switch status {
        case 401: "a valid bearer token is required"
        case 403: "not allowed"
        case 404: "no such resource"
        case 405: "method not allowed"
        case 503: "the server is busy or its storage does not answer; try again shortly"
        default: "the request failed"
        }
    }

    static func busy() -> Response {
        var headers = HTTPFields()
        headers[.retryAfter] = "1"
        return Responses.failure(
            HTTPFailure(.serviceUnavailable, "the server is busy; try again shortly"), extra: headers)
    }
}

/// Prometheus counts per route family and status class, and time spent, for every `/dicomweb` and `/api`
/// request (errors counted with the status they will be answered with).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = FacetRequestContext

    let services: ServerServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        let family: String
        if path == "/dicomweb" || path.hasPrefix("/dicomweb/") {
            family = "dicomweb"
        } else if path.hasPrefix("/api/") {
            family = "api"
        } else {
            return try await next(request, context)
        }
        let started = DispatchTime.now()
        func record(_ status: HTTPResponse.Status) {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            services.metrics.request(family, status: Int(status.code), seconds: seconds)
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record(AuditMiddleware.response(for: error, logger: nil, urls: services.urls).status)
            throw error
        }
    }
}
