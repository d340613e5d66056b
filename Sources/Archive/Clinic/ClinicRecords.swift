import Foundation

/// A clinic record read back: its current (or a past) version decoded, with who wrote it and when.
public struct Versioned<Value: Sendable>: Sendable {
    public var id: String
    public var version: Int
    public var patient: String
    public var parent: String?
    public var actor: String
    public var date: Date
    public var deleted: Bool
    public var value: Value
}

/// Typed access to the clinic records (treatments, tags, annotation layers, consents, registrations) over one
/// `ClinicRecordStore`. Bodies are JSON with sorted keys; a body that no longer decodes is an integrity failure.
public struct ClinicRecords: Sendable {
    public let store: any ClinicRecordStore

    public init(store: any ClinicRecordStore) {
        self.store = store
    }

    static func encode<T: Encodable>(_ value: T) throws(ArchiveError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        do {
            return try encoder.encode(value)
        } catch {
            throw ArchiveError(.invalidInput, "a clinic record cannot be encoded")
        }
    }

    static func decode<T: Decodable & Sendable>(_ type: T.Type, _ record: ClinicRecord) throws(ArchiveError)
        -> Versioned<T>
    {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        let value: T
        do {
            value = try decoder.decode(type, from: record.body)
        } catch {
            throw ArchiveError(.integrity, "a clinic record (\(record.kind.rawValue)) does not decode")
        }
        return Versioned(
            id: record.id, version: record.version, patient: record.patient, parent: record.parent,
            actor: record.actor, date: record.date, deleted: record.deleted, value: value)
    }

    /// Writes a new version of a typed record.
    public func write<T: Encodable & Decodable & Sendable>(
        _ kind: ClinicRecordKind, id: String, patient: String, parent: String? = nil, value: T, actor: String,
        deleted: Bool = false, expectedVersion: Int
    ) async throws(ArchiveError) -> Versioned<T> {
        let record = try await store.write(
            kind, id: id, patient: patient, parent: parent, body: try Self.encode(value), actor: actor,
            deleted: deleted, expectedVersion: expectedVersion)
        return try Self.decode(T.self, record)
    }

    /// The current version, deleted or not.
    public func current<T: Decodable & Sendable>(_ kind: ClinicRecordKind, id: String, as type: T.Type)
        async throws(ArchiveError) -> Versioned<T>?
    {
        guard let record = try await store.current(kind, id: id) else { return nil }
        return try Self.decode(type, record)
    }

    public func versions<T: Decodable & Sendable>(_ kind: ClinicRecordKind, id: String, as type: T.Type)
        async throws(ArchiveError) -> [Versioned<T>]
    {
        var out: [Versioned<T>] = []
        for record in try await store.versions(kind, id: id) { out.append(try Self.decode(type, record)) }
        return out
    }

    public func list<T: Decodable & Sendable>(
        _ kind: ClinicRecordKind, patient: String? = nil, parent: String? = nil, as type: T.Type
    ) async throws(ArchiveError) -> [Versioned<T>] {
        var out: [Versioned<T>] = []
        for record in try await store.records(kind, patient: patient, parent: parent) {
            out.append(try Self.decode(type, record))
        }
        return out
    }

    /// Changes a record by reading it and writing the next version, read again when another writer came first
    /// (up to five times).
    public func update<T: Codable & Sendable>(
        _ kind: ClinicRecordKind, id: String, patient: String, parent: String? = nil, as type: T.Type,
        actor: String, initial: T, _ change: (inout T) throws(ArchiveError) -> Void
    ) async throws(ArchiveError) -> Versioned<T> {
        var attempt = 0
        while true {
            let current = try await self.current(kind, id: id, as: type)
            var value = current.flatMap { $0.deleted ? nil : $0.value } ?? initial
            try change(&value)
            do {
                return try await write(
                    kind, id: id, patient: current?.patient ?? patient, parent: parent, value: value, actor: actor,
                    expectedVersion: current?.version ?? 0)
            } catch  where error.code == .conflict && attempt < 4 {
                attempt += 1
            }
        }
    }

    /// The current tags of each instance of a patient: SOP Instance UID → (tags, version).
    public func tags(patient: String) async throws(ArchiveError) -> [String: (InstanceTags, Int)] {
        var out: [String: (InstanceTags, Int)] = [:]
        for record in try await list(.tags, patient: patient, as: InstanceTags.self) {
            out[record.id] = (record.value, record.version)
        }
        return out
    }

    /// A patient's treatments, by day.
    public func treatments(patient: String) async throws(ArchiveError) -> [(id: String, treatment: Treatment)] {
        try await list(.treatment, patient: patient, as: Treatment.self)
            .map { (id: $0.id, treatment: $0.value) }
            .sorted { ($0.treatment.date, $0.id) < ($1.treatment.date, $1.id) }
    }

    /// A patient's consents as the consent rule takes them.
    public func consents(patient: String?) async throws(ArchiveError) -> [ConsentRule.Held] {
        try await list(.consent, patient: patient, as: Consent.self).map {
            ConsentRule.Held(id: $0.id, patient: $0.patient, consent: $0.value)
        }
    }
}
