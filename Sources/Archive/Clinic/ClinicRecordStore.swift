import Foundation

/// What a clinic keeps beside its images (issue 12): patients registered here, treatments, an instance's tags, its
/// annotation layers, consents, share links.
public enum ClinicRecordKind: String, Sendable, CaseIterable {
    case patient, treatment, tags, annotation, consent, share
    /// A legal hold on a patient (id: the patient's key) and the clinic's retention policy (id `retention`).
    case hold, policy
    /// A disposal request and, once approved and carried out, its certificate (clinic-wide: it outlives the
    /// patient's records).
    case disposal
}

/// One version of a clinic record. Records are never rewritten: a change is a new version (the old ones stay,
/// readable as the record's history), and a deletion is a version marked deleted.
public struct ClinicRecord: Sendable, Hashable {
    public var kind: ClinicRecordKind
    public var id: String
    /// 1 for the first version.
    public var version: Int
    /// The patient's key (a keyed hash, never the ID): kept in the clear to list a patient's records.
    public var patient: String
    /// What the record hangs on, when not the patient alone (an instance's SOP Instance UID for tags and
    /// annotations), in the clear.
    public var parent: String?
    /// The record itself (JSON; sealed at rest with the row's kind, id, version and patient as associated data).
    public var body: Data
    /// The username that wrote this version.
    public var actor: String
    public var date: Date
    public var deleted: Bool

    public init(
        kind: ClinicRecordKind, id: String, version: Int, patient: String, parent: String?, body: Data, actor: String,
        date: Date, deleted: Bool
    ) {
        self.kind = kind
        self.id = id
        self.version = version
        self.patient = patient
        self.parent = parent
        self.body = body
        self.actor = actor
        self.date = date
        self.deleted = deleted
    }

    /// The associated data a version is sealed with: a sealed body moved to another row, record or patient fails.
    var sealingContext: String { "record:\(kind.rawValue):\(id):\(version):\(patient)" }
}

/// The versioned records of a clinic, in the index (SQLite or PostgreSQL, one contract): each write adds a version
/// after the one the writer read (optimistic concurrency: two writers racing on one record, the second gets
/// `.conflict` and reads again); bodies are sealed through the index's `AttributeSealer`.
public protocol ClinicRecordStore: Sendable {
    /// Writes version `expectedVersion + 1` of a record (0 creates it: a record that exists already is a
    /// `.conflict`, as is any version other than the current one). Returns the version written.
    func write(
        _ kind: ClinicRecordKind, id: String, patient: String, parent: String?, body: Data, actor: String,
        deleted: Bool, expectedVersion: Int
    ) async throws(ArchiveError) -> ClinicRecord
    /// The current version of a record (deleted or not), nil when it was never written.
    func current(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> ClinicRecord?
    /// Every version of a record, oldest first.
    func versions(_ kind: ClinicRecordKind, id: String) async throws(ArchiveError) -> [ClinicRecord]
    /// The current versions, not deleted, of the records of `kind` (of one patient, of one parent, or all of the
    /// clinic's), oldest first.
    func records(_ kind: ClinicRecordKind, patient: String?, parent: String?) async throws(ArchiveError)
        -> [ClinicRecord]
}

extension ClinicRecordStore {
    /// Seals a version's body for its row.
    static func seal(_ record: ClinicRecord, _ sealer: AttributeSealer) throws(ArchiveError) -> Data {
        do {
            // A patient's records go with the patient's key (disposal destroys it); clinic-wide ones (the
            // retention policy, disposal certificates) stay under the tenant's.
            return try sealer.seal(
                record.body, uid: record.sealingContext,
                patient: PatientKey(hex: record.patient) != nil ? record.patient : nil)
        } catch {
            throw ArchiveError(.key, "a clinic record cannot be sealed")
        }
    }

    /// Opens a version read from its row (its body still sealed).
    static func open(_ record: ClinicRecord, _ sealer: AttributeSealer) throws(ArchiveError) -> ClinicRecord {
        var opened = record
        opened.body = try sealer.openData(record.body, uid: record.sealingContext)
        return opened
    }
}

/// The store of the archive's index, whichever database it is in (nil for an index without one).
public func clinicRecordStore(for archive: ArchiveService) -> (any ClinicRecordStore)? {
    if let index = archive.index as? PostgresStudyIndex { return PostgresClinicRecordStore(index: index) }
    if let index = archive.index as? SQLiteStudyIndex {
        return SQLiteClinicRecordStore(index: index, tenant: archive.keys.tenant)
    }
    return nil
}
