import Foundation

/// A disposal of one patient's record (issue 12 §4): asked for by one practice manager, approved and carried out by
/// another (two-person rule), then kept as its certificate. It names the patient by keyed hash only and holds no
/// other PHI, so it is a clinic-wide record that outlives the patient's own.
public struct Disposal: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// Asked for, waiting for a second practice manager.
        case pending
        /// Approved: the erase is under way (or was interrupted, and its approver may run it again).
        case approved
        case completed, cancelled
    }

    public var patientKey: String
    public var status: Status
    public var reason: String
    /// The retention due date the request was made on, and the rule that set it.
    public var dueDate: String
    public var rule: String
    public var requestedBy: String
    public var requestedAt: Date
    /// Who may approve (two-person rule): the practice managers other than the requester, active when it was asked
    /// for (`tenant/username`). An account made or promoted afterwards is not a second person. Nil in requests made
    /// before this list was kept (their approver's account must merely predate the request).
    public var approvers: [String]?
    public var approvedBy: String?
    /// The patient key's id as it was when approved (the certificate names it even when a run after an interrupted
    /// one finds the key gone already).
    public var keyID: String?
    public var cancelledBy: String?
    public var certificate: DisposalCertificate?

    public init(patientKey: String, reason: String, dueDate: String, rule: String, requestedBy: String, at: Date) {
        self.patientKey = patientKey
        status = .pending
        self.reason = reason
        self.dueDate = dueDate
        self.rule = rule
        self.requestedBy = requestedBy
        requestedAt = at
    }
}

/// What a disposal destroyed and how (NIST SP 800-88 Rev. 1, "purge" by cryptographic erase): the patient's key and
/// every index row and blob sealed under it.
public struct DisposalCertificate: Codable, Sendable, Equatable {
    public static let method =
        "Purge by cryptographic erase (NIST SP 800-88 Rev. 1, sections 2.5 and 2.6): the patient's 256-bit AES key, "
        + "which wrapped the data key of every blob and sealed every index row and clinic record of the patient, was "
        + "destroyed; the rows were deleted and the blobs removed from storage"
    public var method = DisposalCertificate.method
    /// The destroyed key's id (random, names no one); nil when the patient had no key of their own.
    public var destroyedKeyID: String?
    public var completedAt: Date
    public var studies: Int
    public var series: Int
    public var instances: Int
    public var blobs: Int
    public var records: Int
    public var jobs: Int
    /// Objects of the patient stored before patient keys existed (sealed under the clinic's key): purged here too,
    /// but copies of them in backups made before this disposal are not erased by it.
    public var objectsUnderClinicKey: Int
    /// Blobs that could not be removed from storage now (unreachable store): recorded as pending, so the next start
    /// quarantines them; they are unreadable already.
    public var blobsLeftForNextStart: Int
    public var verification: String
}

extension ArchiveService {
    /// Whether this archive can dispose of a patient by cryptographic erase: its keys include patient keys and its
    /// index is the embedded one. (A PostgreSQL deployment seals under the clinic's key only.)
    public var canDisposeByCryptoErase: Bool { keys.patientKeys != nil && index is SQLiteStudyIndex }

    /// The id of a patient's key (nil when the patient has none).
    public func patientKeyID(_ patient: String) -> String? { keys.patientKeys?.keyID(ofPatient: patient) }

    /// Carries out a disposal: purges the patient's index rows (blobs recorded as pending in the same
    /// transaction), destroys the patient's key, then deletes the blobs. Interrupted anywhere, running it again
    /// completes it; nothing of the patient is readable once the key is gone.
    public func disposePatient(_ patient: String) async throws(ArchiveError) -> DisposalCertificate {
        guard let ring = keys.patientKeys, let index = index as? SQLiteStudyIndex else {
            throw ArchiveError(
                .invalidRequest, "disposal by cryptographic erase needs the embedded index and patient keys")
        }
        let purge = try await index.purgePatient(patient, tenant: keys.tenant, keyID: ring.keyID(ofPatient: patient))
        // Blobs written before patient keys (format 1 or 2) sit under the clinic's key.
        var underClinicKey = purge.tenantSealedRows
        for id in purge.blobIDs {
            if let head = try? await blobs.read(header: id), head < 3 { underClinicKey += 1 }
        }
        let destroyed = try ring.destroy(patient: patient)
        var left = 0
        for id in purge.blobIDs {
            do {
                try await blobs.delete(id)
                try await index.removePendingBlob(id)
            } catch {
                left += 1
            }
        }
        // Verification: the key is gone from the keyring, and no row of the index names the patient any more.
        let keyGone = ring.keyID(ofPatient: patient) == nil && (destroyed.map { ring.key(id: $0) == nil } ?? true)
        let rowsLeft = index.catalog().studies.values.filter { patientKey(forStudy: $0.studyInstanceUID) == patient }
        guard keyGone, rowsLeft.isEmpty else {
            throw ArchiveError(.integrity, "the disposal could not be verified; run it again")
        }
        return DisposalCertificate(
            destroyedKeyID: destroyed, completedAt: Date(), studies: purge.studies, series: purge.series,
            instances: purge.instances, blobs: purge.blobIDs.count, records: purge.records, jobs: purge.jobs,
            objectsUnderClinicKey: underClinicKey, blobsLeftForNextStart: left,
            verification:
                "the patient's key is absent from the keyring and no study of the patient is left in the index")
    }
}

extension BlobStore {
    /// The format version of a stored blob (its fifth byte), for telling patient-keyed blobs (3) from older ones.
    func read(header id: String) async throws(ArchiveError) -> UInt8 {
        guard let store = self as? EncryptedBlobStore else { return 0 }
        let head = try await store.objects.get(id, range: 0..<5)
        guard head.count == 5 else { throw ArchiveError(.integrity, "blob header is damaged") }
        return head[head.startIndex + 4]
    }
}
