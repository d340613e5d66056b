import Crypto
import DICOMCodec
import DICOMCore
import Foundation

/// What to do when an instance arrives whose SOP Instance UID is stored already with other bytes.
public enum DuplicatePolicy: String, Sendable {
    /// Refuse it (failure 0x0111); the stored instance stays.
    case reject
    /// Keep the old bytes aside and make the new ones current (same study and series only).
    case newVersion = "new-version"
}

/// The outcome of storing one instance.
public enum StoreOutcome: Sendable {
    case stored(InstanceRecord, duplicate: Bool)
    /// `reason` is a DICOM failure code (PS3.18 Table I.2-2, plus 0x0111 for a conflicting duplicate);
    /// `message` never carries PHI.
    case failed(sopClassUID: String?, sopInstanceUID: String?, reason: UInt16, message: String)
}

/// DICOM failure reasons used by the store pipeline.
public enum FailureReason {
    public static let processingFailure: UInt16 = 0x0110
    public static let duplicateSOPInstance: UInt16 = 0x0111
    public static let sopClassNotSupported: UInt16 = 0x0122
    public static let outOfResources: UInt16 = 0xA700
    public static let datasetDoesNotMatchSOPClass: UInt16 = 0xA900
    public static let cannotUnderstand: UInt16 = 0xC000
    public static let transferSyntaxNotSupported: UInt16 = 0xC122
}

/// The archive's services over a blob store and an index: storing validated instances (blob durable before the
/// index commits), reading them back verified, and their metadata.
public final class ArchiveService: Sendable {
    public let blobs: any BlobStore
    public let index: any StudyIndex
    public let audit: AuditLog
    public let keys: KeyHierarchy
    public let duplicatePolicy: DuplicatePolicy
    public let temporaryDirectory: URL
    /// The data folder's lock (held while the service lives); -1 when not opened through `openEmbedded`.
    nonisolated(unsafe) var lockDescriptor: Int32 = -1

    deinit {
        if lockDescriptor >= 0 { close(lockDescriptor) }
    }

    public init(
        blobs: any BlobStore, index: any StudyIndex, audit: AuditLog, keys: KeyHierarchy,
        duplicatePolicy: DuplicatePolicy, temporaryDirectory: URL
    ) {
        self.blobs = blobs
        self.index = index
        self.audit = audit
        self.keys = keys
        self.duplicatePolicy = duplicatePolicy
        self.temporaryDirectory = temporaryDirectory
    }

    /// What opening the embedded default found and did, for the start-up log (counts only, never PHI).
    public struct StartReport: Sendable {
        public var createdMasterKey: Bool
        public var removedTemporaryFiles: Int
        public var removedOrphanBlobs: Int
        public var instances: Int
    }

    /// Opens (or creates) the embedded default under `dataDirectory`: keys in `keys/`, encrypted blobs in
    /// `blobs/`, the SQLite index `index.sqlite`, the audit log in `audit/`, request spool in `tmp/`. Leftovers of
    /// interrupted writes are removed, and blobs the index does not know (written before a crash, never
    /// committed, so never acknowledged) are deleted.
    public static func openEmbedded(
        dataDirectory: URL, duplicatePolicy: DuplicatePolicy = .reject,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ArchiveError) -> (ArchiveService, StartReport) {
        try createPrivateDirectory(dataDirectory)
        // One server per data folder: a second one would clean up the first one's writes in flight.
        let lock = open(dataDirectory.appendingPathComponent("lock").path, O_RDWR | O_CREAT, 0o600)
        guard lock >= 0 else { throw ArchiveError(.io, "the data folder's lock file cannot be opened") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw ArchiveError(.io, "another facet process is using this data folder")
        }
        let (keys, created) = try KeyHierarchy.open(
            keyDirectory: dataDirectory.appendingPathComponent("keys"), environment: environment)
        let store = try EncryptedFileBlobStore(root: dataDirectory, keys: keys)
        let removedTemporary = store.cleanUp()
        let spool = dataDirectory.appendingPathComponent("tmp")
        let index = try SQLiteStudyIndex(path: dataDirectory.appendingPathComponent("index.sqlite"), keys: keys)
        let referenced = try index.referencedBlobIDs()
        var orphans = 0
        for id in store.allIDs() where !referenced.contains(id) {
            try? store.delete(id)
            orphans += 1
        }
        let audit = try AuditLog(folder: dataDirectory.appendingPathComponent("audit"), keys: keys)
        let service = ArchiveService(
            blobs: store, index: index, audit: audit, keys: keys, duplicatePolicy: duplicatePolicy,
            temporaryDirectory: spool)
        service.lockDescriptor = lock
        let report = StartReport(
            createdMasterKey: created, removedTemporaryFiles: removedTemporary, removedOrphanBlobs: orphans,
            instances: index.catalog().instances.count)
        return (service, report)
    }

    // MARK: store

    public static let imageStorage: Set<String> = [
        UID.vlPhotographicImageStorage, "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.4",
        "1.2.840.10008.5.1.4.1.1.77.1.1", "1.2.840.10008.5.1.4.1.1.77.1.2", "1.2.840.10008.5.1.4.1.1.77.1.3",
        "1.2.840.10008.5.1.4.1.1.77.1.5.1", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
    ]
    static let encapsulatedDocuments: Set<String> = [
        "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.104.2", UID.encapsulatedSTLStorage,
        UID.encapsulatedOBJStorage, UID.encapsulatedMTLStorage,
    ]
    /// Transfer syntaxes Facet keeps (it never needs to decode them to store them).
    static func acceptable(transferSyntax: String) -> Bool {
        transferSyntax.hasPrefix("1.2.840.10008.1.2") && UID.isValid(transferSyntax)
    }

    /// Stores one Part-10 instance held in memory. `expectedStudy` is the study of a `POST /studies/{study}`.
    public func store(_ data: Data, expectedStudy: String? = nil) -> StoreOutcome {
        let file: DICOMFile
        do {
            file = try Part10.read(data: data)
        } catch {
            return .failed(
                sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.cannotUnderstand,
                message: "not a readable DICOM Part-10 instance: \(error.message)")
        }
        let dataset = file.dataset
        let sopClass = dataset.string(.sopClassUID)
        let sopInstance = dataset.string(.sopInstanceUID)
        func fail(_ reason: UInt16, _ message: String) -> StoreOutcome {
            .failed(sopClassUID: sopClass, sopInstanceUID: sopInstance, reason: reason, message: message)
        }
        guard let sopClass, UID.isValid(sopClass) else {
            return fail(FailureReason.datasetDoesNotMatchSOPClass, "SOP Class UID (0008,0016) is missing or invalid")
        }
        guard let sopInstance, UID.isValid(sopInstance) else {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass, "SOP Instance UID (0008,0018) is missing or invalid")
        }
        guard let study = dataset.string(.studyInstanceUID), UID.isValid(study) else {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass, "Study Instance UID (0020,000D) is missing or invalid")
        }
        guard let series = dataset.string(.seriesInstanceUID), UID.isValid(series) else {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass, "Series Instance UID (0020,000E) is missing or invalid")
        }
        if let expectedStudy, expectedStudy != study {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass,
                "Study Instance UID differs from the study named in the request URL")
        }
        guard let transferSyntax = file.transferSyntaxUID, Self.acceptable(transferSyntax: transferSyntax) else {
            return fail(FailureReason.transferSyntaxNotSupported, "transfer syntax is missing or not a DICOM one")
        }
        if let metaInstance = file.meta.string(.mediaStorageSOPInstanceUID), metaInstance != sopInstance {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass,
                "Media Storage SOP Instance UID (0002,0003) differs from SOP Instance UID")
        }
        guard sopClass.hasPrefix("1.2.840.10008.5.1.4.1.1.") || !sopClass.hasPrefix("1.2.840.10008.") else {
            return fail(FailureReason.sopClassNotSupported, "SOP class is not a storage SOP class")
        }
        if Self.imageStorage.contains(sopClass) && dataset[.pixelData] == nil {
            return fail(FailureReason.datasetDoesNotMatchSOPClass, "an image instance without Pixel Data (7FE0,0010)")
        }
        if Self.encapsulatedDocuments.contains(sopClass) && dataset[.encapsulatedDocument] == nil {
            return fail(
                FailureReason.datasetDoesNotMatchSOPClass,
                "an encapsulated document without Encapsulated Document (0042,0011)")
        }

        // A known SOP Instance UID: identical bytes are a success, other bytes follow the duplicate policy. (New
        // instances are hashed once, by the blob store.)
        if let existing = index.instance(sopInstance) {
            let digest = Formatting.hex(SHA256.hash(data: data))
            if existing.blob.sha256 == digest { return .stored(existing, duplicate: true) }
            if duplicatePolicy == .reject {
                return fail(
                    FailureReason.duplicateSOPInstance,
                    "an instance with this SOP Instance UID is stored already with different content")
            }
        }

        let reference: BlobReference
        do {
            reference = try blobs.put(data)
        } catch {
            return fail(FailureReason.outOfResources, "the instance could not be written: \(error.message)")
        }
        let entry = Self.indexEntry(file, blob: reference)
        do {
            switch try index.commit(entry, allowNewVersion: duplicatePolicy == .newVersion) {
            case .committed, .newVersion:
                return .stored(entry.instance, duplicate: false)
            case .identical:
                try? blobs.delete(reference.id)
                return .stored(index.instance(sopInstance) ?? entry.instance, duplicate: true)
            case .conflict:
                try? blobs.delete(reference.id)
                return fail(
                    FailureReason.duplicateSOPInstance,
                    "an instance with this SOP Instance UID (or its series) is stored already with different content")
            }
        } catch {
            try? blobs.delete(reference.id)
            return fail(FailureReason.processingFailure, "the index could not be updated: \(error.message)")
        }
    }

    /// Splits a read instance into what the index keeps per level, and its metadata JSON.
    static func indexEntry(_ file: DICOMFile, blob: BlobReference) -> IndexEntry {
        var study = Dataset()
        var series = Dataset()
        var instance = Dataset()
        for element in file.dataset.elements where !element.tag.isGroupLength {
            if case .bulk = element.value { continue }
            if case .fragments = element.value { continue }
            switch QueryLevel.of(element.tag) {
            case .study: study.set(element)
            case .series: series.set(element)
            case .instance: instance.set(element)
            }
        }
        if let characterSet = file.dataset[.specificCharacterSet] {
            study.set(characterSet)
            series.set(characterSet)
        }
        let transferSyntax = file.transferSyntaxUID ?? UID.explicitVRLittleEndian
        let record = InstanceRecord(
            sopInstanceUID: file.dataset.string(.sopInstanceUID) ?? "",
            sopClassUID: file.dataset.string(.sopClassUID) ?? "",
            seriesInstanceUID: file.dataset.string(.seriesInstanceUID) ?? "",
            studyInstanceUID: file.dataset.string(.studyInstanceUID) ?? "", transferSyntaxUID: transferSyntax,
            blob: blob, attributes: instance, stored: Date())
        var metadata = file.dataset
        metadata.set(.transferSyntaxUID, .UI, transferSyntax)
        let json = DICOMJSON.encode(
            metadata,
            options: .init(bulkDataURI: { path in path.count == 1 ? "bulkdata/\(path[0].hex)" : nil }))
        return IndexEntry(study: study, series: series, instance: record, metadataJSON: json)
    }

    /// Keeps an uploaded file byte for byte (encrypted like every blob) beside the instance made from it.
    public func keepOriginal(_ data: Data, mediaType: String, fileName: String?, for sopInstanceUID: String)
        throws(ArchiveError)
    {
        let reference = try blobs.put(data)
        do {
            try index.addOriginal(
                OriginalFile(blob: reference, mediaType: mediaType, fileName: fileName), to: sopInstanceUID)
        } catch {
            try? blobs.delete(reference.id)
            throw error
        }
    }

    /// An original kept for an instance, verified like every blob.
    public func readOriginal(_ original: OriginalFile) throws(ArchiveError) -> Data {
        let data = try blobs.get(original.blob.id)
        guard data.count == original.blob.size else {
            throw ArchiveError(.integrity, "stored original length differs from the index")
        }
        return data
    }

    // MARK: read

    /// The stored Part-10 bytes, decrypted and verified (chunk tags and the SHA-256 of the whole).
    public func read(_ record: InstanceRecord) throws(ArchiveError) -> Data {
        let data = try blobs.get(record.blob.id)
        guard data.count == record.blob.size else {
            throw ArchiveError(.integrity, "stored instance length differs from the index")
        }
        return data
    }

    /// The instance's metadata as DICOM JSON (one object), BulkDataURIs made absolute under `instanceURL`.
    public func metadataJSON(_ sopInstanceUID: String, instanceURL: String) throws(ArchiveError) -> String? {
        guard let json = try index.metadataJSON(sopInstanceUID) else { return nil }
        return json.replacingOccurrences(
            of: "\"BulkDataURI\":\"bulkdata/", with: "\"BulkDataURI\":\"\(instanceURL)/bulkdata/")
    }
}
