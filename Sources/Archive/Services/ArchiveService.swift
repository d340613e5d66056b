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

/// A warning the store answers with for an instance it stored (PS3.18 Table I.2-3: 0xB000 coercion of data
/// elements); `message` never carries PHI.
public struct StoreWarning: Sendable, Hashable {
    public var reason: UInt16
    public var message: String

    public init(reason: UInt16, message: String) {
        self.reason = reason
        self.message = message
    }
}

/// The outcome of storing one instance.
public enum StoreOutcome: Sendable {
    case stored(InstanceRecord, duplicate: Bool, warnings: [StoreWarning])
    /// `reason` is a DICOM failure code (PS3.18 Table I.2-2, plus 0x0111 for a conflicting duplicate);
    /// `message` never carries PHI. `retryable`: the storage did not answer (the index database or the object store
    /// is down or overloaded), so the same request may succeed later (503 with Retry-After when nothing was stored).
    case failed(sopClassUID: String?, sopInstanceUID: String?, reason: UInt16, message: String, retryable: Bool = false)
}

/// An instance that passed every check of `ArchiveService.prepare` and is ready for `commit`; nothing is written
/// yet. Its UIDs (not PHI) are what an audit intent names.
public struct PreparedStore: Sendable {
    public let sopClassUID: String
    public let sopInstanceUID: String
    public let seriesInstanceUID: String
    public let studyInstanceUID: String
    /// Warnings the store will answer with once committed.
    public let warnings: [StoreWarning]
    let data: Data
    let file: DICOMFile

    /// The Patient ID and its Issuer the instance carries (kept in memory only, for the audit's keyed hash).
    var patientID: String? { file.dataset.string(.patientID) }
    var issuerOfPatientID: String? { file.dataset.string(Tag(0x0010, 0x0021)) }
}

/// What `ArchiveService.prepare` found.
public enum PrepareResult: Sendable {
    /// Checked and ready to commit.
    case ready(PreparedStore)
    /// Nothing to commit: a failure, or an instance stored already with the same bytes (a success).
    case finished(StoreOutcome)
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

/// DICOM warning reasons used by the store pipeline.
public enum WarningReason {
    public static let coercionOfDataElements: UInt16 = 0xB000
}

/// The archive's services over a blob store and an index: storing validated instances (blob durable before the
/// index commits), reading them back verified, and their metadata.
public final class ArchiveService: Sendable {
    public let blobs: any BlobStore
    public let index: any StudyIndex
    public let audit: any AuditTrail
    public let keys: KeyHierarchy
    public let duplicatePolicy: DuplicatePolicy
    public let temporaryDirectory: URL
    /// Where blocking index calls run (never on a cooperative thread).
    let storage = BlockingPool.storage
    /// The data folder's lock (held while the service lives); -1 when not opened through `openEmbedded`.
    nonisolated(unsafe) var lockDescriptor: Int32 = -1

    deinit {
        if lockDescriptor >= 0 { close(lockDescriptor) }
    }

    public init(
        blobs: any BlobStore, index: any StudyIndex, audit: any AuditTrail, keys: KeyHierarchy,
        duplicatePolicy: DuplicatePolicy, temporaryDirectory: URL
    ) {
        self.blobs = blobs
        self.index = index
        self.audit = audit
        self.keys = keys
        self.duplicatePolicy = duplicatePolicy
        self.temporaryDirectory = temporaryDirectory
    }

    /// What opening the embedded default found and did, for the start-up log (counts and UIDs only, never PHI).
    public struct StartReport: Sendable {
        public var createdMasterKey: Bool
        public var removedTemporaryFiles: Int
        /// Blobs of interrupted stores (recorded as pending, never committed, so never acknowledged) moved to
        /// `DATA/quarantine/` at this start.
        public var quarantinedBlobs: Int
        /// Quarantined blobs older than `quarantineDays` removed at this start.
        public var expiredQuarantinedBlobs: Int
        /// Index rows that could not be decoded (their UIDs), left out of the catalogue; their blobs are kept.
        public var quarantinedRows: [String]
        public var instances: Int
    }

    /// Opens (or creates) an archive whose local state is under `dataDirectory`: keys in `keys/`, the SQLite index
    /// `index.sqlite`, the audit log in `audit/`, request spool in `tmp/`; blobs in `objects` (an S3 bucket, say),
    /// or by default in `blobs/` of the data folder.
    ///
    /// Nothing is deleted on weak evidence. Leftovers of interrupted writes in `tmp/` (never placed) are removed.
    /// A blob the index records as pending but no row references (a store interrupted before its commit, never
    /// acknowledged) is quarantined and removed `quarantineDays` later; only pending blobs are looked at, so a
    /// bucket is never listed. Where listing is cheap (the data folder), a blob the index neither references nor
    /// records as pending means the index is missing, replaced or older than the blobs: opening fails and nothing
    /// is moved or deleted.
    ///
    /// `tenant` names the clinic whose key encrypts this archive; `keyDirectory` (default `DATA/keys`) holds the
    /// master key and the tenants' keys, so one server's clinics share a master key and nothing else.
    public static func openEmbedded(
        dataDirectory: URL, objects: (any ObjectStore)? = nil, database: PostgresDatabase? = nil,
        duplicatePolicy: DuplicatePolicy = .reject,
        quarantineDays: Int = 7, keyDirectory: URL? = nil, tenant: String = "default",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ArchiveError) -> (ArchiveService, StartReport) {
        try createPrivateDirectory(dataDirectory)
        // One server per data folder: a second one would clean up the first one's writes in flight.
        let lock = open(dataDirectory.appendingPathComponent("lock").path, O_RDWR | O_CREAT, 0o600)
        guard lock >= 0 else { throw ArchiveError(.io, "the data folder's lock file cannot be opened") }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw ArchiveError(.io, "another facet process is using this data folder")
        }
        do {
            let (service, report) = try await openLocked(
                dataDirectory: dataDirectory, objects: objects, database: database, duplicatePolicy: duplicatePolicy,
                quarantineDays: quarantineDays,
                keyDirectory: keyDirectory ?? dataDirectory.appendingPathComponent("keys"), tenant: tenant,
                environment: environment)
            service.lockDescriptor = lock
            return (service, report)
        } catch {
            close(lock)
            throw error
        }
    }

    private static func openLocked(
        dataDirectory: URL, objects: (any ObjectStore)?, database: PostgresDatabase?, duplicatePolicy: DuplicatePolicy,
        quarantineDays: Int,
        keyDirectory: URL, tenant: String, environment: [String: String]
    ) async throws(ArchiveError) -> (ArchiveService, StartReport) {
        let (keys, created) =
            if let database {
                try await database.keys(keyDirectory: keyDirectory, tenant: tenant, environment: environment)
            } else {
                try KeyHierarchy.open(keyDirectory: keyDirectory, tenant: tenant, environment: environment)
            }
        let spool = dataDirectory.appendingPathComponent("tmp")
        try createPrivateDirectory(spool)
        let removedTemporary = removeContents(of: spool)
        let objectStore: any ObjectStore
        if let objects { objectStore = objects } else { objectStore = try FileObjectStore(root: dataDirectory) }
        let store = EncryptedBlobStore(objects: objectStore, keys: keys)
        let indexURL = dataDirectory.appendingPathComponent("index.sqlite")
        let listed = try await store.allIDs()
        let storage = BlockingPool.storage
        let index: any StudyIndex & AuditAnchorStore
        if let database {
            index = try await PostgresStudyIndex.open(database: database, tenant: tenant, keys: keys)
        } else {
            if let listed, !listed.isEmpty && !FileManager.default.fileExists(atPath: indexURL.path) {
                // Not even created: an empty index must not be left behind to look like the real one.
                throw unknownBlobs(listed.count)
            }
            let embedded = try await storage.runTyped { () throws(ArchiveError) in
                try SQLiteStudyIndex(path: indexURL, keys: keys)
            }
            // Keys a disposal destroyed stay destroyed, even when a key backup made before it was restored.
            if let ring = keys.patientKeys {
                _ = try ring.destroy(keyIDs: try embedded.destroyedKeyIDs(tenant: tenant))
            }
            index = embedded
        }
        let referenced = try await index.referencedBlobIDs()
        let pending = try await index.pendingBlobIDs()
        if let listed {
            let unknown = listed.filter { !referenced.contains($0) && !pending.contains($0) }
            guard unknown.isEmpty else { throw unknownBlobs(unknown.count) }
        }
        let expired = try await store.expireQuarantine(
            before: Date().addingTimeInterval(-Double(max(0, quarantineDays)) * 86_400))
        var quarantined = 0
        let present = listed.map(Set.init)
        for id in pending.sorted() {
            if !referenced.contains(id) {
                // A store that cannot tell (unreachable, or a policy without listing rights) keeps the record for
                // the next start rather than stopping this one.
                let exists: Bool
                if let present {
                    exists = present.contains(id)
                } else {
                    guard let found = try? await store.exists(id) else { continue }
                    exists = found
                }
                if exists {
                    guard (try? await store.quarantine(id)) != nil else { continue }
                    quarantined += 1
                }
            }
            try await index.removePendingBlob(id)
        }
        let audit: any AuditTrail
        if let database {
            // One chain every replica appends to; a data folder's own log (an archive moved here) is carried over.
            audit = try await PostgresAuditTrail.open(
                database: database, tenant: tenant, keys: keys, importing: dataDirectory.appendingPathComponent("audit")
            )
        } else {
            // The chain is also anchored in the index, so that a removed or cut log is detected.
            audit = try await storage.runTyped { () throws(ArchiveError) in
                try AuditLog(folder: dataDirectory.appendingPathComponent("audit"), keys: keys, anchor: index)
            }
        }
        let service = ArchiveService(
            blobs: store, index: index, audit: audit, keys: keys, duplicatePolicy: duplicatePolicy,
            temporaryDirectory: spool)
        let report = StartReport(
            createdMasterKey: created, removedTemporaryFiles: removedTemporary, quarantinedBlobs: quarantined,
            expiredQuarantinedBlobs: expired, quarantinedRows: index.quarantinedRows,
            instances: index.catalog().instances.count)
        return (service, report)
    }

    /// Removes everything in a folder (leftovers of writes that never finished). Returns how many.
    static func removeContents(of folder: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        return names.count
    }

    static func unknownBlobs(_ count: Int) -> ArchiveError {
        ArchiveError(
            .indexMismatch,
            "\(count) blob\(count == 1 ? " is" : "s are") not known to the index: index.sqlite is missing, replaced or "
                + "older than the blobs. Restore it from backup; nothing was deleted or moved")
    }

    // MARK: store

    public static let imageStorage: Set<String> = [
        UID.vlPhotographicImageStorage, "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.4",
        "1.2.840.10008.5.1.4.1.1.77.1.1", "1.2.840.10008.5.1.4.1.1.77.1.2", "1.2.840.10008.5.1.4.1.1.77.1.3",
        "1.2.840.10008.5.1.4.1.1.77.1.5.1", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
    ]
    /// The one refusal for an instance of a study stored under another patient (ID or name alike).
    static let patientConflict = "the patient (ID or name) differs from the one stored for this study"

    /// SOP classes with pixel data (for rendering).
    public static func imageLike(_ sopClass: String) -> Bool { imageStorage.contains(sopClass) }

    static let encapsulatedDocuments: Set<String> = [
        "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.104.2", UID.encapsulatedSTLStorage,
        UID.encapsulatedOBJStorage, UID.encapsulatedMTLStorage,
    ]
    /// Transfer syntaxes Facet keeps (it never needs to decode them to store them).
    static func acceptable(transferSyntax: String) -> Bool {
        transferSyntax.hasPrefix("1.2.840.10008.1.2") && UID.isValid(transferSyntax)
    }

    /// Stores one Part-10 instance held in memory: `prepare`, then `commit`. `expectedStudy` is the study of a
    /// `POST /studies/{study}`.
    public func store(_ data: Data, expectedStudy: String? = nil) async -> StoreOutcome {
        switch prepare(data, expectedStudy: expectedStudy) {
        case .finished(let outcome): outcome
        case .ready(let prepared): await commit(prepared)
        }
    }

    /// The checks of a store, without writing anything: normalise (preamble, Media Storage UIDs), parse,
    /// validate, check nesting, duplicates and the patient's identity against the study's.
    public func prepare(_ data: Data, expectedStudy: String? = nil) -> PrepareResult {
        let normalised: (data: Data, file: DICOMFile, warnings: [String])
        do {
            normalised = try Part10.readNormalized(data: data)
        } catch {
            return .finished(
                .failed(
                    sopClassUID: nil, sopInstanceUID: nil, reason: FailureReason.cannotUnderstand,
                    message: "not a readable DICOM Part-10 instance: \(error.message)"))
        }
        let file = normalised.file
        var warnings = normalised.warnings.map {
            StoreWarning(reason: WarningReason.coercionOfDataElements, message: $0)
        }
        let dataset = file.dataset
        let sopClass = dataset.string(.sopClassUID)
        let sopInstance = dataset.string(.sopInstanceUID)
        func fail(_ reason: UInt16, _ message: String) -> PrepareResult {
            .finished(.failed(sopClassUID: sopClass, sopInstanceUID: sopInstance, reason: reason, message: message))
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
        // The index's rows must decode at every start-up, and its decoder refuses deeper nesting.
        if IndexBounds.nestingDepth(dataset, limit: DICOMJSON.maximumDepth) > DICOMJSON.maximumDepth {
            return fail(
                FailureReason.cannotUnderstand,
                "sequences are nested more than \(DICOMJSON.maximumDepth) levels deep, more than the archive keeps")
        }

        // A known SOP Instance UID: identical bytes are a success, other bytes follow the duplicate policy. (New
        // instances are hashed once, by the blob store.)
        if let existing = index.instance(sopInstance) {
            let digest = Formatting.hex(SHA256.hash(data: normalised.data))
            if existing.blob.sha256 == digest {
                return .finished(.stored(existing, duplicate: true, warnings: warnings))
            }
            if duplicatePolicy == .reject {
                return fail(
                    FailureReason.duplicateSOPInstance,
                    "an instance with this SOP Instance UID is stored already with different content")
            }
        }

        if let stored = index.catalog().studies[study] {
            let incoming = Self.levels(dataset).study
            switch PatientIdentity.compare(stored: stored.attributes, incoming: incoming) {
            case .same: break
            case .sameAfterNormalisation:
                warnings.append(
                    StoreWarning(
                        reason: WarningReason.coercionOfDataElements,
                        message: "Patient's Name differs from the study's only in case or padding"))
            case .differentID:
                // One message for ID and name: a storer learns no more about the stored patient than "not yours".
                return fail(FailureReason.cannotUnderstand, Self.patientConflict)
            case .differentName:
                return fail(
                    FailureReason.cannotUnderstand, Self.patientConflict)
            }
        }
        return .ready(
            PreparedStore(
                sopClassUID: sopClass, sopInstanceUID: sopInstance, seriesInstanceUID: series,
                studyInstanceUID: study, warnings: warnings, data: normalised.data, file: file))
    }

    /// Writes a prepared instance: a pending record, the blob (durable), then the index commit that references it
    /// (and ends the pending record). A failure after the blob is written removes it again.
    public func commit(_ prepared: PreparedStore) async -> StoreOutcome {
        let sopInstance = prepared.sopInstanceUID
        func fail(_ reason: UInt16, _ message: String, retryable: Bool = false) -> StoreOutcome {
            .failed(
                sopClassUID: prepared.sopClassUID, sopInstanceUID: sopInstance, reason: reason, message: message,
                retryable: retryable)
        }
        let reference: BlobReference
        let patient = prepared.patientID.flatMap { keys.patientKey(patientID: $0, issuer: prepared.issuerOfPatientID) }
        // The patient key the blob goes under, checked again by the index commit: a disposal that destroys it
        // meanwhile makes the commit refuse the instance (its blob would be unreadable), never acknowledge it.
        let patientKeyID: String?
        do {
            patientKeyID = try patient.flatMap { patient throws(ArchiveError) in
                try keys.patientKeys?.key(forPatient: patient).id
            }
            reference = try await writeBlob(prepared.data, owner: sopInstance, patient: patient)
        } catch {
            return fail(
                FailureReason.outOfResources, "the instance could not be written: \(error.message)",
                retryable: error.code == .unavailable)
        }
        let (index, allowNewVersion) = (self.index, duplicatePolicy == .newVersion)
        let entry: IndexEntry
        do {
            entry = try await storage.runTyped {
                var entry = Self.indexEntry(prepared.file, blob: reference)
                entry.patientKeyID = patientKeyID
                return entry
            }
        } catch {
            await discardBlob(reference.id)
            return fail(FailureReason.processingFailure, "the index could not be updated: \(error.message)")
        }
        do {
            let result = try await index.commit(entry, allowNewVersion: allowNewVersion)
            switch result {
            case .committed, .newVersion:
                return .stored(entry.instance, duplicate: false, warnings: prepared.warnings)
            case .identical:
                await discardBlob(reference.id)
                return .stored(
                    index.instance(sopInstance) ?? entry.instance, duplicate: true, warnings: prepared.warnings)
            case .conflict:
                await discardBlob(reference.id)
                return fail(
                    FailureReason.duplicateSOPInstance,
                    "an instance with this SOP Instance UID (or its series) is stored already with different content")
            case .identityConflict:
                await discardBlob(reference.id)
                return fail(FailureReason.cannotUnderstand, Self.patientConflict)
            }
        } catch {
            // An index that did not answer may still commit: the blob and its pending record stay, so that the
            // next start either finds the blob referenced or quarantines it. Never delete what may be referenced.
            if error.code != .unavailable { await discardBlob(reference.id) }
            return fail(
                FailureReason.processingFailure, "the index could not be updated: \(error.message)",
                retryable: error.code == .unavailable)
        }
    }

    /// Records the write as pending, then writes the blob; a failed write leaves no pending record.
    private func writeBlob(_ data: Data, owner: String, patient: String?) async throws(ArchiveError) -> BlobReference {
        let (id, index) = (blobs.newBlobID(), self.index)
        try await index.addPendingBlob(id, owner: owner)
        do {
            return try await blobs.put(data, owner: owner, id: id, patient: patient)
        } catch {
            // A store that did not answer may have kept the object: the pending record stays, so that the next
            // start-up finds and quarantines it (a bucket is never listed).
            if error.code != .unavailable {
                try? await index.removePendingBlob(id)
            }
            throw error
        }
    }

    /// Deletes a blob no row references; its pending record goes only once the blob is gone (otherwise the next
    /// start-up quarantines it).
    private func discardBlob(_ id: String) async {
        guard (try? await blobs.delete(id)) != nil else { return }
        let index = self.index
        try? await index.removePendingBlob(id)
    }

    /// Splits a dataset into the attributes each level keeps (no bulk values), bounded by `IndexBounds`.
    static func levels(_ dataset: Dataset) -> (study: Dataset, series: Dataset, instance: Dataset) {
        var study = Dataset()
        var series = Dataset()
        var instance = Dataset()
        for element in dataset.elements where !element.tag.isGroupLength {
            if case .bulk = element.value { continue }
            if case .fragments = element.value { continue }
            switch QueryLevel.of(element.tag) {
            case .study: study.set(element)
            case .series: series.set(element)
            case .instance: instance.set(element)
            }
        }
        (study, series, instance) = IndexBounds.bound(study: study, series: series, instance: instance)
        if let characterSet = dataset[.specificCharacterSet] {
            study.set(characterSet)
            series.set(characterSet)
            instance.set(characterSet)
        }
        return (study, series, instance)
    }

    /// Splits a read instance into what the index keeps per level, and its metadata JSON (see `IndexBounds`).
    static func indexEntry(_ file: DICOMFile, blob: BlobReference) -> IndexEntry {
        let (study, series, instance) = levels(file.dataset)
        let transferSyntax = file.transferSyntaxUID ?? UID.explicitVRLittleEndian
        let record = InstanceRecord(
            sopInstanceUID: file.dataset.string(.sopInstanceUID) ?? "",
            sopClassUID: file.dataset.string(.sopClassUID) ?? "",
            seriesInstanceUID: file.dataset.string(.seriesInstanceUID) ?? "",
            studyInstanceUID: file.dataset.string(.studyInstanceUID) ?? "", transferSyntaxUID: transferSyntax,
            blob: blob, attributes: instance, stored: Date())
        var metadata = IndexBounds.metadata(file.dataset)
        metadata.set(.transferSyntaxUID, .UI, transferSyntax)
        let json = DICOMJSON.encode(
            metadata,
            options: .init(bulkDataURI: { path in path.count == 1 ? "bulkdata/\(path[0].hex)" : nil }))
        return IndexEntry(study: study, series: series, instance: record, metadataJSON: json)
    }

    /// Keeps an uploaded file byte for byte (encrypted like every blob, bound to the instance) beside the instance
    /// made from it.
    public func keepOriginal(_ data: Data, mediaType: String, fileName: String?, for sopInstanceUID: String)
        async throws(ArchiveError)
    {
        let reference = try await writeBlob(
            data, owner: sopInstanceUID, patient: patientKey(forInstance: sopInstanceUID))
        let index = self.index
        do {
            try await index.addOriginal(
                OriginalFile(blob: reference, mediaType: mediaType, fileName: fileName), to: sopInstanceUID)
        } catch {
            // As in `commit`: an index that did not answer may still have recorded the original.
            if error.code != .unavailable { await discardBlob(reference.id) }
            throw error
        }
    }

    /// An original kept for the instance `sopInstanceUID`, verified like every blob.
    public func readOriginal(_ original: OriginalFile, of sopInstanceUID: String) async throws(ArchiveError) -> Data {
        try await verifiedRead(original.blob, owner: sopInstanceUID, what: "stored original")
    }

    // MARK: read

    /// The stored Part-10 bytes, decrypted and verified (chunk tags, the SHA-256 of the whole, and the size and
    /// SHA-256 the index holds).
    public func read(_ record: InstanceRecord) async throws(ArchiveError) -> Data {
        try await verifiedRead(record.blob, owner: record.sopInstanceUID, what: "stored instance")
    }

    private func verifiedRead(_ reference: BlobReference, owner: String, what: String) async throws(ArchiveError)
        -> Data
    {
        let (data, sha256) = try await blobs.getVerified(reference.id, owner: owner)
        guard data.count == reference.size else {
            throw ArchiveError(.integrity, "\(what) length differs from the index")
        }
        guard sha256 == reference.sha256 else {
            throw ArchiveError(.integrity, "\(what) SHA-256 differs from the index")
        }
        return data
    }

    /// The instance's metadata as DICOM JSON (one object), BulkDataURIs made absolute under `instanceURL`.
    public func metadataJSON(_ sopInstanceUID: String, instanceURL: String) async throws(ArchiveError) -> String? {
        guard let json = try await index.metadataJSON(sopInstanceUID) else { return nil }
        return json.replacingOccurrences(
            of: "\"BulkDataURI\":\"bulkdata/", with: "\"BulkDataURI\":\"\(instanceURL)/bulkdata/")
    }
}
