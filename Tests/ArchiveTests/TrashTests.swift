import DICOMCore
import Foundation
import Testing

@testable import Archive

/// The 30-day trash (issue 12 §4): a soft-deleted instance is restorable for 30 days, byte for byte and across a
/// restart; after that it is disposed of, unless the retention rule or a legal hold still requires it.
@Suite struct TrashTests {
    static let day: TimeInterval = 86_400

    /// An instance of `patientID` whose study is dated `studyDate` (`YYYYMMDD`).
    func instance(study: String, sop: String, patientID: String, studyDate: String) throws -> Data {
        var dataset = Sample.dataset(study: study, sop: sop, patientID: patientID, name: "Trash^Tess")
        dataset.set(.studyDate, .DA, studyDate)
        return try Sample.bytes(dataset)
    }

    func records(_ service: ArchiveService) throws -> ClinicRecords {
        ClinicRecords(store: try #require(clinicRecordStore(for: service)))
    }

    @Test func aDeletedInstanceIsRestorableFor30DaysByteForByteAndAcrossARestart() async throws {
        let folder = try temporaryFolder()
        let study = Sample.uid()
        let (sop, other) = (Sample.uid(), Sample.uid())
        let original = Data("the capture app's JPEG".utf8)
        let stored: Data
        do {
            let (service, _) = try await openArchive(folder)
            let bytes = try instance(study: study, sop: sop, patientID: "TRASH-1", studyDate: "20261101")
            let record = try #require(await expectStored(service, bytes)).0
            _ = await expectStored(
                service, try instance(study: study, sop: other, patientID: "TRASH-1", studyDate: "20261101"))
            try await service.keepOriginal(original, mediaType: "image/jpeg", fileName: "tess.jpg", for: sop)
            stored = try await service.read(record)
            let deletedAt = Date()
            _ = try await service.index.softDelete(
                [sop], why: Deletion(reason: "wrong side", actor: "dr.a", date: deletedAt))
            #expect(service.index.instance(sop) == nil)

            let entries = try await service.trashEntries(records: try records(service), now: deletedAt)
            let entry = try #require(entries.first { $0.item.instance.sopInstanceUID == sop })
            #expect(entries.count == 1)
            #expect(entry.status == .restorable)
            #expect(entry.item.instance.deletion.reason == "wrong side")
            #expect(entry.item.patient == service.keys.patientKey(patientID: "TRASH-1", issuer: nil))
            #expect(abs(entry.restorableUntil.timeIntervalSince(deletedAt) - 30 * Self.day) < 0.01)

            // On day 31 it can no longer be undone; on day 29 it can.
            await #expect(throws: ArchiveError.self) {
                _ = try await service.restoreFromTrash(
                    seq: entry.item.seq, now: deletedAt.addingTimeInterval(31 * Self.day))
            }
            let restored = try await service.restoreFromTrash(
                seq: entry.item.seq, now: deletedAt.addingTimeInterval(29 * Self.day))
            #expect(restored.sopInstanceUID == sop && restored.sopClassUID == Sample.basicTextSR)
            #expect(restored.transferSyntaxUID == UID.explicitVRLittleEndian)
            #expect(try await service.read(try #require(service.index.instance(sop))) == stored)
            #expect(try await service.index.originals(of: sop).count == 1)
            #expect(try await service.trashEntries(records: nil, now: deletedAt).isEmpty)
            // Restored once: the entry is gone.
            await #expect(throws: ArchiveError.self) {
                _ = try await service.restoreFromTrash(seq: entry.item.seq, now: deletedAt)
            }
        }
        // After a restart the restored instance is served with its metadata and its original.
        let (again, report) = try await openArchive(folder)
        #expect(report.quarantinedRows.isEmpty && report.quarantinedBlobs == 0)
        let record = try #require(again.index.instance(sop))
        #expect(try await again.read(record) == stored)
        #expect(try await again.index.metadataJSON(sop)?.contains(sop) == true)
        let originals = try await again.index.originals(of: sop)
        #expect(originals.count == 1 && originals.first?.fileName == "tess.jpg")
        #expect(again.index.catalog().studies[study]?.seriesUIDs.count == 2)
    }

    @Test func aRestoreIsRefusedWhenTheUIDIsStoredAgain() async throws {
        let folder = try temporaryFolder()
        let (service, _) = try await openArchive(folder)
        let (study, sop) = (Sample.uid(), Sample.uid())
        let bytes = try instance(study: study, sop: sop, patientID: "TRASH-2", studyDate: "20261101")
        _ = await expectStored(service, bytes)
        _ = try await service.index.softDelete([sop], why: Deletion(reason: "duplicate", actor: "dr.a"))
        _ = await expectStored(service, bytes)
        let entry = try #require(try await service.trashEntries(records: nil, now: Date()).first)
        await #expect(throws: ArchiveError.self) {
            _ = try await service.restoreFromTrash(seq: entry.item.seq, now: Date())
        }
        #expect(service.index.instance(sop) != nil)
        #expect(try await service.trashEntries(records: nil, now: Date()).count == 1)
    }

    @Test func after30DaysTheSweepDisposesOnlyWhatRetentionAndHoldsLetGo() async throws {
        let folder = try temporaryFolder()
        let (old, live, recent) = (
            (study: Sample.uid(), sop: Sample.uid(), original: Sample.uid()), Sample.uid(),
            (study: Sample.uid(), sop: Sample.uid())
        )
        do {
            let (service, _) = try await openArchive(folder)
            let records = try records(service)
            // An old visit (retention ran out long ago), a recent one (kept 10 years), an old one under a legal hold.
            let held = (study: Sample.uid(), sop: Sample.uid())
            let oldRecord = try #require(
                await expectStored(
                    service, try instance(study: old.study, sop: old.sop, patientID: "OLD-1", studyDate: "20050301"))
            )
            .0
            _ = await expectStored(
                service, try instance(study: old.study, sop: live, patientID: "OLD-1", studyDate: "20050301"))
            try await service.keepOriginal(Data("old photo".utf8), mediaType: "image/jpeg", fileName: nil, for: old.sop)
            let oldOriginal = try #require(try await service.index.originals(of: old.sop).first).blob.id
            _ = await expectStored(
                service, try instance(study: recent.study, sop: recent.sop, patientID: "NEW-1", studyDate: "20261101"))
            _ = await expectStored(
                service, try instance(study: held.study, sop: held.sop, patientID: "HOLD-1", studyDate: "20050301"))
            let heldPatient = try #require(service.keys.patientKey(patientID: "HOLD-1", issuer: nil))
            _ = try await records.write(
                .hold, id: heldPatient, patient: heldPatient, value: LegalHold(reason: "litigation"), actor: "pm",
                expectedVersion: 0)
            let deletedAt = Date()
            _ = try await service.index.softDelete(
                [old.sop, recent.sop, held.sop], why: Deletion(reason: "cleanup", actor: "dr.a", date: deletedAt))

            // Within the 30 days nothing goes.
            var sweep = try await service.sweepTrash(records: records, now: deletedAt.addingTimeInterval(29 * Self.day))
            #expect(sweep.disposed.isEmpty && sweep.retained == 0 && sweep.held == 0)
            #expect(try await service.trashEntries(records: records, now: deletedAt).count == 3)

            // On day 31: the old one is disposed of, the recent one kept by retention, the held one by its hold.
            let day31 = deletedAt.addingTimeInterval(31 * Self.day)
            let states = Dictionary(
                uniqueKeysWithValues: try await service.trashEntries(records: records, now: day31).map {
                    ($0.item.instance.sopInstanceUID, $0)
                })
            #expect(states[old.sop]?.status == .due)
            #expect(states[recent.sop]?.status == .retained)
            #expect(states[recent.sop]?.keptUntil == "2036-11-01")
            #expect(states[held.sop]?.status == .held)
            sweep = try await service.sweepTrash(records: records, now: day31)
            #expect(sweep.disposed.map(\.instance.sopInstanceUID) == [old.sop])
            #expect(sweep.retained == 1 && sweep.held == 1)
            #expect(sweep.purge.instances == 1 && sweep.purge.originals == 1 && sweep.blobsLeftForNextStart == 0)
            #expect(Set(sweep.purge.blobIDs) == [oldRecord.blob.id, oldOriginal])
            let blobs = blobFiles(folder)
            #expect(!blobs.contains(oldRecord.blob.id) && !blobs.contains(oldOriginal))
            #expect(blobs.contains(try #require(service.index.instance(live)).blob.id))
            #expect(Set(try await service.index.deletions().map(\.sopInstanceUID)) == [recent.sop, held.sop])
            // The study keeps its live instance; a second sweep has nothing to do.
            #expect(service.index.catalog().studies[old.study] != nil)
            #expect(try await service.sweepTrash(records: records, now: day31).disposed.isEmpty)
            // The disposal is in the audit trail, naming the instance, never the patient.
            let lines = try await service.audit.lines()
            let disposal = try #require(lines.first { $0.contains("disposal of trashed instances") })
            #expect(disposal.contains(old.sop) && !disposal.contains("OLD-1") && !disposal.contains("Trash"))

            // Once the hold is released and retention has run out, the held one goes; the recent one waits until 2036.
            let hold = try #require(try await records.current(.hold, id: heldPatient, as: LegalHold.self))
            _ = try await records.write(
                .hold, id: heldPatient, patient: heldPatient, value: hold.value, actor: "pm", deleted: true,
                expectedVersion: hold.version)
            sweep = try await service.sweepTrash(records: records, now: day31)
            #expect(sweep.disposed.map(\.instance.sopInstanceUID) == [held.sop] && sweep.retained == 1)
            // Its study had nothing else: the study and series rows go too, and restarting is clean.
            #expect(sweep.purge.studies == 1 && sweep.purge.series == 1)
        }
        let (again, report) = try await openArchive(folder)
        #expect(report.quarantinedRows.isEmpty && report.quarantinedBlobs == 0)
        #expect(try await again.index.deletions().map(\.sopInstanceUID) == [recent.sop])
        #expect(again.index.instance(live) != nil)
    }
}
