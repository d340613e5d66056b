import DICOMCore
import Foundation

/// One stored instance as the index knows it: where its bytes are and the instance-level attributes QIDO-RS
/// returns and matches on.
public struct InstanceRecord: Sendable, Hashable {
    public var sopInstanceUID: String
    public var sopClassUID: String
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var transferSyntaxUID: String
    public var blob: BlobReference
    /// Instance-level attributes (no bulk values).
    public var attributes: Dataset
    public var stored: Date

    public init(
        sopInstanceUID: String, sopClassUID: String, seriesInstanceUID: String, studyInstanceUID: String,
        transferSyntaxUID: String, blob: BlobReference, attributes: Dataset, stored: Date
    ) {
        self.sopInstanceUID = sopInstanceUID
        self.sopClassUID = sopClassUID
        self.seriesInstanceUID = seriesInstanceUID
        self.studyInstanceUID = studyInstanceUID
        self.transferSyntaxUID = transferSyntaxUID
        self.blob = blob
        self.attributes = attributes
        self.stored = stored
    }
}

/// A series: its series-level attributes and its instances in the order they were stored.
public struct SeriesRecord: Sendable, Hashable {
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var attributes: Dataset
    public var instanceUIDs: [String]

    public init(seriesInstanceUID: String, studyInstanceUID: String, attributes: Dataset, instanceUIDs: [String]) {
        self.seriesInstanceUID = seriesInstanceUID
        self.studyInstanceUID = studyInstanceUID
        self.attributes = attributes
        self.instanceUIDs = instanceUIDs
    }
}

/// A study: its patient- and study-level attributes and its series in the order they were stored.
public struct StudyRecord: Sendable, Hashable {
    public var studyInstanceUID: String
    public var attributes: Dataset
    public var seriesUIDs: [String]

    public init(studyInstanceUID: String, attributes: Dataset, seriesUIDs: [String]) {
        self.studyInstanceUID = studyInstanceUID
        self.attributes = attributes
        self.seriesUIDs = seriesUIDs
    }
}

/// The whole index as an immutable value: what QIDO-RS searches. Taking one is cheap (copy on write).
public struct Catalog: Sendable {
    public var studies: [String: StudyRecord] = [:]
    public var series: [String: SeriesRecord] = [:]
    public var instances: [String: InstanceRecord] = [:]

    public init() {}

    /// Adds or replaces an instance, creating its series and study (whose attributes the first instance sets).
    mutating func insert(study: Dataset, series seriesAttributes: Dataset, instance: InstanceRecord) {
        if studies[instance.studyInstanceUID] == nil {
            studies[instance.studyInstanceUID] = StudyRecord(
                studyInstanceUID: instance.studyInstanceUID, attributes: study, seriesUIDs: [])
        }
        if series[instance.seriesInstanceUID] == nil {
            series[instance.seriesInstanceUID] = SeriesRecord(
                seriesInstanceUID: instance.seriesInstanceUID, studyInstanceUID: instance.studyInstanceUID,
                attributes: seriesAttributes, instanceUIDs: [])
            studies[instance.studyInstanceUID]?.seriesUIDs.append(instance.seriesInstanceUID)
        }
        if instances[instance.sopInstanceUID] == nil {
            series[instance.seriesInstanceUID]?.instanceUIDs.append(instance.sopInstanceUID)
        }
        instances[instance.sopInstanceUID] = instance
    }

    /// Takes an instance out; a series or study left without instances goes with it.
    mutating func remove(_ sopInstanceUID: String) {
        guard let record = instances.removeValue(forKey: sopInstanceUID) else { return }
        series[record.seriesInstanceUID]?.instanceUIDs.removeAll { $0 == sopInstanceUID }
        guard series[record.seriesInstanceUID]?.instanceUIDs.isEmpty ?? false else { return }
        series[record.seriesInstanceUID] = nil
        studies[record.studyInstanceUID]?.seriesUIDs.removeAll { $0 == record.seriesInstanceUID }
        if studies[record.studyInstanceUID]?.seriesUIDs.isEmpty ?? false { studies[record.studyInstanceUID] = nil }
    }
}

/// What the store pipeline commits for one instance once its blob is durable.
public struct IndexEntry: Sendable {
    public var study: Dataset
    public var series: Dataset
    public var instance: InstanceRecord
    /// The instance's full metadata as DICOM JSON, bulk values as relative `bulkdata/<tag>` URIs.
    public var metadataJSON: String
    /// The id of the patient key the blob was written under (nil without patient keys): an index that records
    /// destroyed keys refuses the commit when this one was destroyed meanwhile (a disposal racing the store).
    public var patientKeyID: String?

    public init(study: Dataset, series: Dataset, instance: InstanceRecord, metadataJSON: String) {
        self.study = study
        self.series = series
        self.instance = instance
        self.metadataJSON = metadataJSON
    }
}

/// How a commit went.
public enum CommitResult: Sendable, Equatable {
    case committed
    /// The same SOP Instance UID with the same bytes is already stored; nothing changed.
    case identical
    /// The same SOP Instance UID is stored with other bytes (or in another study or series); nothing changed.
    case conflict
    /// The earlier version was kept aside (its blob stays) and the new one is current.
    case newVersion
    /// The study is stored already under another patient (Patient ID, its issuer, or a Patient's Name that differs
    /// by more than case or padding); nothing changed.
    case identityConflict
}

/// The index of studies, series and instances. Implementations keep identifying attributes encrypted at rest
/// (through `AttributeSealer`) and answer searches from a catalogue in memory that follows the database.
///
/// Implementations: `SQLiteStudyIndex` (the embedded default) and `PostgresStudyIndex`. Everything that touches the
/// database is async; the catalogue and single-instance lookups are in memory.
public protocol StudyIndex: Sendable {
    /// Everything, for searching.
    func catalog() -> Catalog
    func instance(_ sopInstanceUID: String) -> InstanceRecord?
    /// UIDs of rows left out of the catalogue at load because they could not be decoded.
    var quarantinedRows: [String] { get }
    /// Commits one instance (and ends its blob's pending record in the same transaction). With `allowNewVersion`, a
    /// conflicting instance of the same study and series replaces the current one and the old blob is recorded as
    /// superseded.
    func commit(_ entry: IndexEntry, allowNewVersion: Bool) async throws(ArchiveError) -> CommitResult
    /// The stored metadata JSON of an instance (bulk values as relative `bulkdata/<tag>` URIs).
    func metadataJSON(_ sopInstanceUID: String) async throws(ArchiveError) -> String?
    /// Exact lookups through the keyed blind indexes, without decrypting anything.
    func studyUIDs(patientID: String) async throws(ArchiveError) -> [String]
    func studyUIDs(accessionNumber: String) async throws(ArchiveError) -> [String]
    /// Every blob the index refers to (current and superseded versions, originals, deleted instances).
    func referencedBlobIDs() async throws(ArchiveError) -> Set<String>
    /// Records that a blob is about to be written for `owner` (a SOP Instance UID), before it is written. The record
    /// goes in the same transaction as the commit (or original) that references the blob; a blob that is pending and
    /// unreferenced at start-up is from an interrupted store, never acknowledged.
    func addPendingBlob(_ id: String, owner: String) async throws(ArchiveError)
    /// Forgets a pending write whose blob was deleted (or never written).
    func removePendingBlob(_ id: String) async throws(ArchiveError)
    /// Every blob recorded as pending.
    func pendingBlobIDs() async throws(ArchiveError) -> Set<String>
    /// Records an uploaded file kept byte for byte beside the instance made from it (and ends its pending record).
    func addOriginal(_ original: OriginalFile, to sopInstanceUID: String) async throws(ArchiveError)
    /// Soft-deletes instances in one transaction: they leave the catalogue (searches and retrievals no longer see them;
    /// a study or series without instances left goes too) and are kept with `why` — the reason and who gave it, sealed
    /// — in the trash (`SQLiteStudyIndex.trash()`); their blobs and originals stay referenced. The same SOP Instance
    /// UID may be stored again afterwards. Returns the records deleted (unknown UIDs are skipped).
    func softDelete(_ sopInstanceUIDs: [String], why: Deletion) async throws(ArchiveError) -> [InstanceRecord]
    /// Soft-deleted instances, oldest first.
    func deletions() async throws(ArchiveError) -> [DeletedInstance]
    /// The originals kept for an instance, in upload order.
    func originals(of sopInstanceUID: String) async throws(ArchiveError) -> [OriginalFile]
}

/// An uploaded file as it arrived (a capture app's JPEG with its EXIF, a PLY or ASCII STL before conversion).
public struct OriginalFile: Sendable, Hashable {
    public var blob: BlobReference
    public var mediaType: String
    /// The uploaded file name (may identify the patient: sealed at rest like every attribute).
    public var fileName: String?

    public init(blob: BlobReference, mediaType: String, fileName: String?) {
        self.blob = blob
        self.mediaType = mediaType
        self.fileName = fileName
    }
}

/// Why instances were soft-deleted: the reason (free text, may name the patient, so sealed at rest), who deleted
/// them and when.
public struct Deletion: Sendable, Hashable {
    public var reason: String
    public var actor: String
    public var date: Date

    public init(reason: String, actor: String, date: Date = Date()) {
        self.reason = reason
        self.actor = actor
        self.date = date
    }
}

/// A soft-deleted instance as the index keeps it.
public struct DeletedInstance: Sendable, Hashable {
    public var sopInstanceUID: String
    public var seriesInstanceUID: String
    public var studyInstanceUID: String
    public var blob: BlobReference
    public var deletion: Deletion

    public init(
        sopInstanceUID: String, seriesInstanceUID: String, studyInstanceUID: String, blob: BlobReference,
        deletion: Deletion
    ) {
        self.sopInstanceUID = sopInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
        self.studyInstanceUID = studyInstanceUID
        self.blob = blob
        self.deletion = deletion
    }
}
