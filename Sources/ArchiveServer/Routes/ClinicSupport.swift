import Archive
import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird

/// What the clinic routes (patients, treatments, tags, annotations, consents) share: the records store, the patient
/// named by a URL, the directory over the catalogue, JSON in and out.
struct ClinicSupport {
    let services: ServerServices

    func records(_ context: FacetRequestContext) throws -> ClinicRecords {
        guard let records = try services.tenant(context).records else {
            throw HTTPFailure(.notImplemented, "this archive's index keeps no clinic records")
        }
        return records
    }

    /// The patient named by the URL's `:patient` (a Patient ID, percent-decoded) and `?issuer=`; 400 when malformed.
    func patientKey(_ request: Request, _ context: FacetRequestContext) throws -> (key: PatientKey, id: String) {
        let id = context.parameters.get("patient")?.removingPercentEncoding ?? ""
        let issuer = try RequestParts.queryItems(request).first { $0.name == "issuer" }?.value
        return (try key(id, issuer: issuer, context), id)
    }

    func key(_ id: String, issuer: String?, _ context: FacetRequestContext) throws -> PatientKey {
        guard id.utf8.count <= 64, (issuer?.utf8.count ?? 0) <= 64,
            !id.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) || $0 == "\\" }),
            let key = services.identity.patient(id, issuer: issuer, tenant: try services.tenant(context).tenant)
        else { throw HTTPFailure(.badRequest, "a Patient ID of 1 to 64 characters is needed") }
        return key
    }

    func directory(_ context: FacetRequestContext) throws -> PatientDirectory {
        let tenant = try services.tenant(context)
        let identity = services.identity
        let name = tenant.tenant
        return PatientDirectory(
            catalog: tenant.archive.index.catalog(), keyOf: { identity.patient(of: $0, tenant: name) })
    }

    /// Every patient of the clinic, by key.
    func patients(_ context: FacetRequestContext) async throws -> [PatientKey: PatientSummary] {
        let directory = try directory(context)
        var registrations: [String: PatientRegistration] = [:]
        for record in try await records(context).list(.patient, as: PatientRegistration.self) {
            registrations[record.id] = record.value
        }
        return directory.patients(registrations: registrations)
    }

    /// The patient of the URL, decided for `action` first (so a refused caller learns nothing), then 404 when the
    /// archive knows nothing of them.
    func patient(_ request: Request, _ context: FacetRequestContext, _ action: AccessAction) async throws
        -> PatientSummary
    {
        try services.preauthorize(context, action)
        let (key, _) = try patientKey(request, context)
        try await services.authorize(context, action, patient: key)
        guard let summary = try await patients(context)[key] else {
            throw HTTPFailure(.notFound, "no such patient")
        }
        return summary
    }

    /// A request body up to `limit` bytes.
    static func body(_ request: Request, limit: Int = 1 << 20) async throws -> Data {
        var data = Data()
        for try await buffer in request.body {
            data.append(contentsOf: buffer.readableBytesView)
            guard data.count <= limit else { throw HTTPFailure(.contentTooLarge, "request body too large") }
        }
        return data
    }

    /// An `If-Match: "N"` (or `N`) header, or a body's `"version": N`: the version the writer read.
    static func expectedVersion(_ request: Request, body: Data?) throws -> Int? {
        if let header = request.headers[.ifMatch] {
            let text = header.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\"", with: "")
                .replacingOccurrences(of: "W/", with: "")
            // "0": the writer saw no version yet (the ETag of tags never set).
            guard let version = Int(text), (0...Int(Int32.max)).contains(version) else {
                throw HTTPFailure(.badRequest, "If-Match names a record version (\"3\")")
            }
            return version
        }
        guard let body, let fields = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let raw = fields["version"]
        else { return nil }
        guard let number = raw as? NSNumber, let version = Int(exactly: number.doubleValue),
            (1...Int(Int32.max)).contains(version)
        else {
            throw HTTPFailure(.badRequest, "version must be a positive whole number")
        }
        return version
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) throws
        -> Response
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Responses.bytes(
            try encoder.encode(value), status: status, contentType: "application/json", extra: extra)
    }

    static func versionHeader(_ version: Int, location: String? = nil) -> HTTPFields {
        var headers = HTTPFields()
        headers[.eTag] = "\"\(version)\""
        if let location { headers[.location] = location }
        return headers
    }
}

/// The JSON shapes of the clinic API (lowerCamelCase, dates `YYYY-MM-DD`, instants ISO 8601 UTC).
enum ClinicOut {
    struct Patient: Encodable {
        var patientID: String
        var issuer: String?
        var key: String
        var name: String?
        var birthDate: String?
        var sex: String?
        var studies: Int
        var instances: Int
        var firstVisit: String?
        var lastVisit: String?
        var registered: Bool

        init(_ summary: PatientSummary) {
            patientID = summary.patientID
            issuer = summary.issuer
            key = summary.key.hex
            name = summary.name
            birthDate = summary.birthDate
            sex = summary.sex
            studies = summary.studyUIDs.count
            instances = summary.instances
            firstVisit = summary.firstVisit
            lastVisit = summary.lastVisit
            registered = summary.registered
        }
    }

    struct Treatment: Encodable {
        var type: String?
        var id: String
        var version: Int
        var service: String
        var provider: String?
        var date: String
        var regions: [String]
        var notes: String?
        var updated: String
        var updatedBy: String
        var deleted: Bool?

        init(_ record: Versioned<Archive.Treatment>, type: String? = nil) {
            self.type = type
            id = record.id
            version = record.version
            service = record.value.service
            provider = record.value.provider
            date = record.value.date
            regions = record.value.regions
            notes = record.value.notes
            updated = Formatting.timestamp(record.date)
            updatedBy = record.actor
            deleted = record.deleted ? true : nil
        }
    }

    struct Tags: Encodable {
        var sopInstanceUID: String
        var version: Int
        var timing: String?
        var region: String?
        var subregion: String?
        var view: String?
        var quality: String?
        var treatment: String?
        var custom: [String]
        var updated: String?
        var updatedBy: String?

        init(uid: String, tags: InstanceTags, version: Int, date: Date?, actor: String?) {
            sopInstanceUID = uid
            self.version = version
            timing = tags.timing?.rawValue
            region = tags.region
            subregion = tags.subregion
            view = tags.view
            quality = tags.quality?.rawValue
            treatment = tags.treatment
            custom = tags.custom
            updated = date.map(Formatting.timestamp)
            updatedBy = actor
        }
    }

    struct Capture: Encodable {
        var type = "capture"
        var sopInstanceUID: String
        var seriesInstanceUID: String
        var studyInstanceUID: String
        var sopClassUID: String
        var dimension: String
        var date: String?
        var time: String?
        var timing: String?
        var region: String?
        var subregion: String?
        var view: String?
        var quality: String?
        var treatment: String?
        var custom: [String]
        var tagsVersion: Int

        init(_ capture: Archive.Capture) {
            sopInstanceUID = capture.sopInstanceUID
            seriesInstanceUID = capture.seriesInstanceUID
            studyInstanceUID = capture.studyInstanceUID
            sopClassUID = capture.sopClassUID
            dimension = capture.dimension
            date = capture.date
            time = capture.time
            timing = capture.tags.timing?.rawValue
            region = capture.tags.region
            subregion = capture.tags.subregion
            view = capture.tags.view
            quality = capture.tags.quality?.rawValue
            treatment = capture.tags.treatment
            custom = capture.tags.custom
            tagsVersion = capture.tagsVersion
        }
    }

    struct Pair: Encodable {
        var patientKey: String
        var before: Capture
        var after: Capture
        var daysElapsed: Int?
        var treatmentsBetween: [Treatment]
    }

    struct Annotation: Encodable {
        var id: String
        var sopInstanceUID: String
        var version: Int
        var name: String
        var items: [AnnotationLayer.Item]
        var updated: String
        var updatedBy: String
        var deleted: Bool?

        init(_ record: Versioned<AnnotationLayer>) {
            id = record.id
            sopInstanceUID = record.parent ?? ""
            version = record.version
            name = record.value.name
            items = record.value.items
            updated = Formatting.timestamp(record.date)
            updatedBy = record.actor
            deleted = record.deleted ? true : nil
        }
    }

    struct Consent: Encodable {
        struct Withdrawal: Encodable {
            var date: String
            var by: String
        }

        var id: String
        var version: Int
        var kind: String
        var channels: [String]
        var scope: Archive.Consent.Scope
        var signer: String
        var signedDate: String
        var expires: String?
        var recipient: String?
        var form: String?
        var withdrawn: Withdrawal?
        var active: Bool
        var updated: String
        var updatedBy: String

        init(_ record: Versioned<Archive.Consent>, now: Date = Date()) {
            id = record.id
            version = record.version
            kind = record.value.kind.rawValue
            channels = record.value.channels.map(\.rawValue)
            scope = record.value.scope
            signer = record.value.signer
            signedDate = record.value.signedDate
            expires = record.value.expires
            recipient = record.value.recipient
            form = record.value.form
            withdrawn = record.value.withdrawal.map {
                Withdrawal(date: Formatting.timestamp($0.date), by: $0.by)
            }
            active = record.value.isActive(at: now)
            updated = Formatting.timestamp(record.date)
            updatedBy = record.actor
        }
    }
}
