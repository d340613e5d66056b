import DICOMCore
import Foundation
import Testing

@testable import Archive

/// Disposal by cryptographic erase (issue 12 §4): after it, nothing of the patient is readable, neither in the data
/// folder nor in a data backup made before it; other patients are untouched.
@Suite struct DisposalTests {
    static let doomedID = "DISPOSE-4711"
    static let doomedName = "Zwicky^Hortensia"

    /// Every file under `folder` (relative path → bytes).
    func files(_ folder: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) else {
            return out
        }
        for case let url as URL in enumerator where !url.hasDirectoryPath {
            out[String(url.path.dropFirst(folder.path.count))] = FileManager.default.contents(atPath: url.path)
        }
        return out
    }

    @Test func disposalLeavesNothingReadableHereOrInAnEarlierBackup() async throws {
        let root = try temporaryFolder()
        let folder = root.appendingPathComponent("data")
        let backup = root.appendingPathComponent("backup")
        let doomedStudy = Sample.uid()
        let doomedSOPs = [Sample.uid(), Sample.uid(), Sample.uid()]
        let keptSOP = Sample.uid()
        let patient: String
        let doomedBlob: String
        do {
            let (service, _) = try await openArchive(folder)
            let ring = try #require(service.keys.patientKeys)
            for sop in doomedSOPs {
                _ = await expectStored(
                    service,
                    try Sample.instance(
                        study: doomedStudy, sop: sop, patientID: Self.doomedID, name: Self.doomedName,
                        description: "doomed study"))
            }
            _ = await expectStored(service, try Sample.instance(sop: keptSOP, patientID: "KEEP-1", name: "Keeper^Kim"))
            try await service.keepOriginal(
                Data("original photo of \(Self.doomedName)".utf8), mediaType: "image/jpeg", fileName: "zwicky.jpg",
                for: doomedSOPs[0])
            _ = try await service.index.softDelete([doomedSOPs[2]], why: Deletion(reason: "blurred", actor: "dr"))
            patient = try #require(service.keys.patientKey(patientID: Self.doomedID, issuer: nil))
            let records = ClinicRecords(store: try #require(clinicRecordStore(for: service)))
            _ = try await records.write(
                .treatment, id: "t1", patient: patient,
                value: Treatment(
                    service: "Filler cheeks", provider: "dr", date: "2014-03-01", regions: ["cheek"],
                    notes: Self.doomedName),
                actor: "dr", expectedVersion: 0)

            // Patient blobs are format 3, under the patient's key.
            doomedBlob = try #require(service.index.instance(doomedSOPs[0])).blob.id
            #expect(try await service.blobs.read(header: doomedBlob) == 3)
            let keyID = try #require(ring.keyID(ofPatient: patient))

            // A data backup made before the disposal holds no keys.
            let report = try ArchiveBackup.make(
                dataDirectory: folder, keyDirectory: folder.appendingPathComponent("keys"), destination: backup)
            #expect(report.indexes == 1 && report.blobs == 5)
            #expect(!FileManager.default.fileExists(atPath: backup.appendingPathComponent("keys").path))
            #expect(files(backup).keys.allSatisfy { !$0.contains("key") })

            let certificate = try await service.disposePatient(patient)
            #expect(certificate.destroyedKeyID == keyID)
            #expect(certificate.studies == 1 && certificate.instances == 3 && certificate.blobs == 4)
            #expect(certificate.records == 1 && certificate.objectsUnderClinicKey == 0)
            #expect(certificate.blobsLeftForNextStart == 0)
            #expect(ring.key(id: keyID) == nil && ring.keyID(ofPatient: patient) == nil)
            #expect(service.index.instance(doomedSOPs[0]) == nil)
            #expect(service.index.instance(keptSOP) != nil)
            #expect(try await records.list(.treatment, patient: patient, as: Treatment.self).isEmpty)
            #expect(try await service.index.deletions().isEmpty)
            #expect(!blobFiles(folder).contains(doomedBlob))

            // No byte of the patient in the clear anywhere, in the data folder (keys included) or the backup.
            let needles = [Self.doomedID, Self.doomedName, "Zwicky", "doomed study", "zwicky.jpg"].map { Data($0.utf8) }
            let everything = files(folder).merging(
                files(backup).mapKeys { "backup" + $0 }, uniquingKeysWith: { a, _ in a })
            #expect(everything.count > 10)
            for (name, bytes) in everything {
                for needle in needles {
                    #expect(bytes.range(of: needle) == nil, "\(name) holds the patient in the clear")
                }
            }
            // The keyring file no longer holds the destroyed key's id.
            let keyring = try #require(
                FileManager.default.contents(
                    atPath: folder.appendingPathComponent("keys/patient-keys-default.sqlite").path))
            #expect(keyring.range(of: Data(keyID.utf8)) == nil)
        }

        // The archive restarts and serves the other patient.
        do {
            let (service, report) = try await openArchive(folder)
            #expect(report.quarantinedRows.isEmpty)
            #expect(try await service.read(try #require(service.index.instance(keptSOP))).count > 0)
            #expect(service.index.catalog().studies[doomedStudy] == nil)
        }

        // The earlier backup, opened with the surviving keys: the patient's rows do not open (set aside), their
        // blobs fail, the other patient reads back.
        let (restored, restoredReport) = try await ArchiveService.openEmbedded(
            dataDirectory: backup, keyDirectory: folder.appendingPathComponent("keys"), environment: [:])
        #expect(restored.index.catalog().studies[doomedStudy] == nil)
        #expect(restoredReport.quarantinedRows.contains(doomedStudy))
        #expect(restored.index.instance(keptSOP) != nil)
        #expect(try await restored.read(try #require(restored.index.instance(keptSOP))).count > 0)
        await #expect(throws: ArchiveError.self) {
            _ = try await restored.blobs.getVerified(doomedBlob, owner: doomedSOPs[0])
        }
        // The patient's records in it are gone (their key is), not damaged: listings go on.
        let restoredRecords = ClinicRecords(store: try #require(clinicRecordStore(for: restored)))
        #expect(try await restoredRecords.list(.treatment, patient: patient, as: Treatment.self).isEmpty)
        #expect(try await restoredRecords.list(.treatment, as: Treatment.self).isEmpty)
        // Every blob file of the backup but the other patient's fails to open for the patient's instances.
        let keptBlob = try #require(restored.index.instance(keptSOP)).blob.id
        #expect(blobFiles(backup).count == 5)
        for id in blobFiles(backup) where id != keptBlob {
            for sop in doomedSOPs {
                let readable = await (try? restored.blobs.getVerified(id, owner: sop)) != nil
                #expect(!readable)
            }
        }
    }

    @Test func aKeyBackupRestoresExpiresAndLosesKeysDisposedOfSinceItWasMade() async throws {
        let root = try temporaryFolder()
        let folder = root.appendingPathComponent("data")
        let keysFolder = folder.appendingPathComponent("keys")
        let passphrase = "correct horse battery staple"
        let sop = Sample.uid()
        let sealed: Data
        let keyID: String
        do {
            let (service, _) = try await openArchive(folder)
            _ = await expectStored(service, try Sample.instance(sop: sop, patientID: "GONE-1"))
            let patient = try #require(service.keys.patientKey(patientID: "GONE-1", issuer: nil))
            keyID = try #require(service.keys.patientKeys?.keyID(ofPatient: patient))
            sealed = try KeyBackup.make(keyDirectory: keysFolder, masterKeyFile: nil, passphrase: passphrase, days: 30)
            #expect(sealed.range(of: Data(keyID.utf8)) == nil, "nothing readable in the key backup")
            _ = try await service.disposePatient(patient)
        }
        // Refused: too short a passphrase, a wrong one, an edited expiry, after expiry.
        #expect(throws: ArchiveError.self) {
            _ = try KeyBackup.make(keyDirectory: keysFolder, masterKeyFile: nil, passphrase: "short", days: 30)
        }
        #expect(throws: ArchiveError.self) { _ = try KeyBackup.open(sealed, passphrase: "wrong passphrase!") }
        let later = Date().addingTimeInterval(31 * 86_400)
        #expect(throws: ArchiveError.self) { _ = try KeyBackup.open(sealed, passphrase: passphrase, now: later) }
        var document = try #require(try JSONSerialization.jsonObject(with: sealed) as? [String: Any])
        document["expires"] = Formatting.timestamp(Date().addingTimeInterval(400 * 86_400))
        let edited = try JSONSerialization.data(withJSONObject: document)
        #expect(throws: ArchiveError.self) { _ = try KeyBackup.open(edited, passphrase: passphrase, now: later) }

        // The key directory lost, restored from the backup made before the disposal: the disposed patient's key
        // comes back with it, and the next start destroys it again (the index remembers its id).
        let (files, _) = try KeyBackup.open(sealed, passphrase: passphrase)
        #expect(files["master.key"]?.count == 32)
        #expect(throws: ArchiveError.self) { try KeyBackup.restore(files, into: keysFolder) }
        try FileManager.default.removeItem(at: keysFolder)
        try KeyBackup.restore(files, into: keysFolder)
        let (keys, _) = try KeyHierarchy.open(keyDirectory: keysFolder, environment: [:])
        #expect(keys.patientKeys?.key(id: keyID) != nil)
        let (service, report) = try await openArchive(folder)
        #expect(report.quarantinedRows.isEmpty)
        #expect(service.keys.patientKeys?.key(id: keyID) == nil)
        #expect(keys.patientKeys?.count() == 0)
    }

    @Test func aBackupRefusesToLandInsideTheDataFolderOrOnAnExistingFolder() async throws {
        let folder = try temporaryFolder()
        _ = try await openArchive(folder)
        #expect(throws: ArchiveError.self) {
            _ = try ArchiveBackup.make(
                dataDirectory: folder, keyDirectory: folder.appendingPathComponent("keys"),
                destination: folder.appendingPathComponent("copy"))
        }
        #expect(throws: ArchiveError.self) {
            _ = try ArchiveBackup.make(
                dataDirectory: folder, keyDirectory: folder.appendingPathComponent("keys"),
                destination: folder.deletingLastPathComponent())
        }
    }

    /// A store racing a disposal: its blob was written under the patient's key, which the disposal destroyed before
    /// the index commit. The commit refuses it (never an acknowledged, unreadable instance); a store after the
    /// disposal gets a new key and is readable.
    @Test func aStoreWhoseKeyWasDestroyedMeanwhileIsRefusedAtCommit() async throws {
        let folder = try temporaryFolder()
        let (service, _) = try await openArchive(folder)
        let ring = try #require(service.keys.patientKeys)
        let patient = try #require(service.keys.patientKey(patientID: "RACE-1", issuer: nil))
        _ = await expectStored(service, try Sample.instance(patientID: "RACE-1", name: "Race^Rita"))
        let keyID = try #require(ring.keyID(ofPatient: patient))
        let late = try Sample.instance(patientID: "RACE-1", name: "Race^Rita")
        guard case .ready(let prepared) = service.prepare(late) else {
            Issue.record("not prepared")
            return
        }
        // The entry as the store made it before the disposal: its blob under the key about to be destroyed.
        let blob = try await service.blobs.put(
            late, owner: prepared.sopInstanceUID, id: service.blobs.newBlobID(), patient: patient)
        var entry = ArchiveService.indexEntry(prepared.file, blob: blob)
        entry.patientKeyID = keyID
        _ = try await service.disposePatient(patient)
        await #expect(throws: ArchiveError.self) { _ = try await service.index.commit(entry, allowNewVersion: false) }
        #expect(service.index.instance(prepared.sopInstanceUID) == nil)
        // Stored again after the disposal: a new key, readable.
        let record = try #require(await expectStored(service, late)).0
        #expect(ring.keyID(ofPatient: patient) != keyID)
        #expect(try await service.read(record) == late)
    }

    @Test func rowsSealedUnderAPatientKeyNameTheKeyAndOldRowsStillOpen() throws {
        let folder = try temporaryFolder()
        let (keys, _) = try KeyHierarchy.open(keyDirectory: folder, environment: [:])
        let sealer = AttributeSealer(keys: keys)
        let patient = try #require(keys.patientKey(patientID: "P-9", issuer: nil))
        let sealed = try sealer.seal(Data("row".utf8), uid: "1.2.3", patient: patient)
        #expect(AttributeSealer.patientKeyID(of: sealed) == keys.patientKeys?.keyID(ofPatient: patient))
        #expect(try sealer.openData(sealed, uid: "1.2.3") == Data("row".utf8))
        #expect(throws: ArchiveError.self) { _ = try sealer.openData(sealed, uid: "1.2.4") }
        let legacy = try sealer.seal(Data("old".utf8), uid: "1.2.3")
        #expect(AttributeSealer.patientKeyID(of: legacy) == nil)
        #expect(try sealer.openData(legacy, uid: "1.2.3") == Data("old".utf8))
        _ = try keys.patientKeys?.destroy(patient: patient)
        #expect(throws: ArchiveError.self) { _ = try sealer.openData(sealed, uid: "1.2.3") }
    }

}

extension Dictionary {
    fileprivate func mapKeys(_ transform: (Key) -> Key) -> [Key: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
