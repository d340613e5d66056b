import Crypto
import DICOMCodec
import DICOMCore
import Foundation

/// The marketing export (issue 12 §3): which photos may leave for a channel now, decided photo by photo by
/// `ConsentRule` (tagged marketing-approved, and an active marketing consent of the patient covering the photo and
/// the channel), narrowed by the request's filters; and how each leaves (pseudonymous names, a manifest without
/// PHI, both watermarks).
public struct MarketingExport: Sendable {
    public struct Filters: Sendable, Equatable {
        public var treatment: String?
        public var region: String?
        public var provider: String?
        /// `YYYY-MM-DD`, inclusive.
        public var from: String?
        public var to: String?

        public init(
            treatment: String? = nil, region: String? = nil, provider: String? = nil, from: String? = nil,
            to: String? = nil
        ) {
            self.treatment = treatment
            self.region = region
            self.provider = provider
            self.from = from
            self.to = to
        }

        /// Reads `{"treatment", "region", "provider", "from", "to"}` (any subset).
        public static func decode(_ fields: [String: Any]) throws(ArchiveError) -> Filters {
            for key in fields.keys where !["treatment", "region", "provider", "from", "to"].contains(key) {
                throw ArchiveError(.invalidInput, "filters has no field \"\(key.prefix(40))\"")
            }
            func text(_ key: String) throws(ArchiveError) -> String? {
                guard let value = fields[key], !(value is NSNull) else { return nil }
                guard let string = value as? String else {
                    throw ArchiveError(.invalidInput, "\(key) must be a string")
                }
                return string
            }
            var filters = Filters()
            if let id = try text("treatment") {
                guard let checked = ClinicTerms.recordID(id) else {
                    throw ArchiveError(.invalidInput, "treatment must be a treatment id")
                }
                filters.treatment = checked
            }
            filters.region = try text("region").map { v throws(ArchiveError) in try ClinicTerms.term(v, field: "region")
            }
            filters.provider = try ClinicTerms.text(try text("provider"), field: "provider", limit: 200)?.lowercased()
            filters.from = try text("from").map { v throws(ArchiveError) in try ClinicTerms.date(v, field: "from") }
            filters.to = try text("to").map { v throws(ArchiveError) in try ClinicTerms.date(v, field: "to") }
            return filters
        }
    }

    /// One photo that may leave.
    public struct Item: Sendable {
        public var record: InstanceRecord
        public var patient: String
        public var pseudonym: UInt32
        public var tags: InstanceTags
        public var service: String?
        public var consentIDs: [String]
    }

    public struct Plan: Sendable {
        public var id: String
        public var channel: Consent.Channel
        public var items: [Item]
        /// Photos tagged marketing-approved that matched the filters but that no consent lets go.
        public var withheld: Int
        public var consentIDs: [String] { Array(Set(items.flatMap(\.consentIDs))).sorted() }
    }

    /// Most photos one export holds (each at most 2048 pixels on its longest side).
    public static let maximumPhotos = 1000

    public let archive: ArchiveService
    public let records: ClinicRecords
    public let keyOf: @Sendable (StudyRecord) -> PatientKey?

    public init(
        archive: ArchiveService, records: ClinicRecords, keyOf: @escaping @Sendable (StudyRecord) -> PatientKey?
    ) {
        self.archive = archive
        self.records = records
        self.keyOf = keyOf
    }

    /// The patient's pseudonym in exports and shares: 24 bits of a keyed hash of their key (the same patient gets
    /// the same pseudonym every time; it reveals nothing without the clinic's key).
    public func pseudonym(_ patient: String) -> UInt32 {
        let key = archive.keys.tenantDerivedKey("facet export pseudonym v1")
        let mac = Array(HMAC<SHA256>.authenticationCode(for: Data(patient.utf8), using: key))
        return UInt32(mac[0]) << 16 | UInt32(mac[1]) << 8 | UInt32(mac[2])
    }

    /// The photos that may leave for `channel` at `time`, oldest first.
    public func plan(channel: Consent.Channel, filters: Filters, at time: Date) async throws(ArchiveError) -> Plan {
        let catalog = archive.index.catalog()
        let tagged = try await records.list(.tags, as: InstanceTags.self)
        let consents = try await records.consents(patient: nil)
        var treatments: [String: Treatment] = [:]
        for treatment in try await records.list(.treatment, as: Treatment.self) {
            treatments[treatment.id] = treatment.value
        }
        var items: [(date: String, item: Item)] = []
        var withheld = 0
        for record in tagged {
            guard let instance = catalog.instances[record.id], instance.attributes.int(.rows) != nil,
                let study = catalog.studies[instance.studyInstanceUID], keyOf(study)?.hex == record.patient
            else { continue }
            let tags = PatientDirectory.effectiveTags(record.value, instance.attributes)
            guard tags.quality == .marketingApproved else { continue }
            let date = study.attributes.string(.studyDate).flatMap { try? ClinicTerms.date($0, field: "") } ?? ""
            let treatment = tags.treatment.flatMap { treatments[$0] }
            if let wanted = filters.treatment, tags.treatment != wanted { continue }
            if let region = filters.region, tags.region != region && tags.subregion != region { continue }
            if let provider = filters.provider, treatment?.provider?.lowercased() != provider { continue }
            if let from = filters.from, date < from { continue }
            if let to = filters.to, date > to { continue }
            let decision = ConsentRule.decide(
                ConsentRule.Photo(
                    sopInstanceUID: instance.sopInstanceUID, patient: record.patient, quality: tags.quality,
                    treatment: tags.treatment), channel: channel, at: time, consents: consents)
            guard decision.allowed else {
                withheld += 1
                continue
            }
            items.append(
                (
                    date,
                    Item(
                        record: instance, patient: record.patient, pseudonym: pseudonym(record.patient), tags: tags,
                        service: treatment?.service, consentIDs: decision.consentIDs)
                ))
        }
        guard items.count <= Self.maximumPhotos else {
            throw ArchiveError(
                .tooLarge,
                "\(items.count) photos match; one export holds at most \(Self.maximumPhotos): narrow the filters")
        }
        let ordered = items.sorted {
            ($0.item.pseudonym, $0.date, $0.item.record.sopInstanceUID)
                < ($1.item.pseudonym, $1.date, $1.item.record.sopInstanceUID)
        }.map(\.item)
        return Plan(id: ClinicTerms.newID(), channel: channel, items: ordered, withheld: withheld)
    }

    /// A file name that names no one: the number, the pseudonym, region, view and timing.
    public static func fileName(_ item: Item, number: Int) -> String {
        let parts = [item.tags.region, item.tags.subregion, item.tags.view, item.tags.timing?.rawValue].compactMap {
            $0?.replacingOccurrences(of: " ", with: "-").filter { $0.isLetter || $0.isNumber || $0 == "-" }
        }
        let index = String(number)
        return "photos/" + String(repeating: "0", count: max(0, 4 - index.count)) + index + "-P"
            + hex6(item.pseudonym) + (parts.isEmpty ? "" : "-" + parts.joined(separator: "-")) + ".jpg"
    }

    static func hex6(_ value: UInt32) -> String {
        let text = String(value & 0xFF_FFFF, radix: 16)
        return String(repeating: "0", count: 6 - text.count) + text
    }

    /// The invisible mark's payload for a photo of an export or share (`id`: its lower-case UUID).
    public static func payload(practice: String, pseudonym: UInt32, id: String) -> Watermark.Payload {
        Watermark.Payload(
            practice: Watermark.practiceCode(practice), pseudonym: pseudonym,
            mark: UInt32(id.prefix(6), radix: 16) ?? 0)
    }

    /// A file's SHA-256, hex, for the manifest.
    public static func sha256(_ data: Data) -> String { Formatting.hex(Data(SHA256.hash(data: data))) }

    /// The manifest: what each file shows and its SHA-256, without names, IDs or dates (nor the treatment's free-text
    /// service, which could name someone).
    public static func manifest(
        _ plan: Plan, practice: String, files: [(name: String, item: Item, sha256: String)], created: Date
    ) -> Data {
        func quoted(_ text: String?) -> String { text.map { DICOMJSON.quote($0) } ?? "null" }
        let photos = files.map { file in
            "{\"file\":\(quoted(file.name)),\"pseudonym\":\"P\(hex6(file.item.pseudonym))\","
                + "\"region\":\(quoted(file.item.tags.region)),\"subregion\":\(quoted(file.item.tags.subregion)),"
                + "\"view\":\(quoted(file.item.tags.view)),\"timing\":\(quoted(file.item.tags.timing?.rawValue)),"
                + "\"sha256\":\"\(file.sha256)\"}"
        }
        let text =
            "{\"export\":\"\(plan.id)\",\"created\":\"\(Formatting.timestamp(created))\","
            + "\"channel\":\"\(plan.channel.rawValue)\",\"practice\":\(quoted(practice)),"
            + "\"watermark\":\"practice \(String(format: "%04x", Watermark.practiceCode(practice))), export \(plan.id.prefix(6))\","
            + "\"count\":\(files.count),\"photos\":[" + photos.joined(separator: ",") + "]}\n"
        return Data(text.utf8)
    }
}
