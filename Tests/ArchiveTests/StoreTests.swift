import DICOMCodec
import DICOMCore
import Foundation
import Testing

@testable import Archive

/// The store pipeline: prepare (no writes) then commit, nesting and size bounds, the patient's identity, and what
/// real clients send (no preamble, Media Storage UIDs that differ from the dataset's).
@Suite struct StoreTests {
    func archive(_ duplicates: DuplicatePolicy = .reject) async throws -> (ArchiveService, URL) {
        let folder = try temporaryFolder()
        return (try await openArchive(folder, duplicates: duplicates).0, folder)
    }

    func failure(_ outcome: StoreOutcome) -> (reason: UInt16, message: String)? {
        if case .failed(_, _, let reason, let message, _) = outcome { return (reason, message) }
        return nil
    }

    @Test func prepareWritesNothingAndCommitStores() async throws {
        let (service, folder) = try await archive()
        guard case .ready(let prepared) = service.prepare(try Sample.instance(), expectedStudy: nil) else {
            Issue.record("not ready")
            return
        }
        #expect(blobFiles(folder).isEmpty)
        #expect(try await service.index.pendingBlobIDs().isEmpty)
        guard case .stored(let record, let duplicate, _) = await service.commit(prepared) else {
            Issue.record("not stored")
            return
        }
        #expect(!duplicate)
        #expect(record.sopInstanceUID == prepared.sopInstanceUID)
        #expect(blobFiles(folder) == [record.blob.id])
    }

    @Test func anOriginalIsBoundToItsInstanceAndLeavesNoPendingRecord() async throws {
        let (service, _) = try await archive()
        guard let (record, _) = await expectStored(service, try Sample.instance()),
            let (other, _) = await expectStored(service, try Sample.instance())
        else { return }
        try await service.keepOriginal(
            Data("photo bytes".utf8), mediaType: "image/jpeg", fileName: nil, for: record.sopInstanceUID)
        #expect(try await service.index.pendingBlobIDs().isEmpty)
        let original = try #require(try await service.index.originals(of: record.sopInstanceUID).first)
        #expect(try await service.readOriginal(original, of: record.sopInstanceUID) == Data("photo bytes".utf8))
        let error = await #expect(throws: ArchiveError.self) {
            try await service.readOriginal(original, of: other.sopInstanceUID)
        }
        #expect(error?.code == .integrity)
    }

    // MARK: nesting

    /// A dataset whose Request Attributes Sequence nests `depth` levels.
    func nested(_ depth: Int) -> Dataset {
        var item = Dataset()
        item.set(Tag(0x0040, 0x1001), .SH, "innermost")
        for _ in 1..<max(1, depth) {
            var outer = Dataset()
            outer.set(Tag(0x0040, 0x0275), sequence: [item])
            item = outer
        }
        var dataset = Sample.dataset()
        dataset.set(Tag(0x0040, 0x0275), sequence: [item])
        return dataset
    }

    @Test(arguments: [20, DICOMJSON.maximumDepth, DICOMJSON.maximumDepth + 1])
    func nestingDeeperThanTheIndexDecodesIsRefusedBeforeCommit(depth: Int) async throws {
        let folder = try temporaryFolder()
        let dataset = nested(depth)
        #expect(IndexBounds.nestingDepth(dataset, limit: 100) == depth)
        let outcome = await (try await openArchive(folder).0).store(try Sample.bytes(dataset))
        if depth > DICOMJSON.maximumDepth {
            #expect(failure(outcome)?.reason == FailureReason.cannotUnderstand)
            #expect(failure(outcome)?.message.contains("nested more than") == true)
            #expect(blobFiles(folder).isEmpty)
        } else {
            guard case .stored(let record, _, _) = outcome else {
                Issue.record("not stored: \(failure(outcome)?.message ?? "")")
                return
            }
            // The row decodes at the next start.
            let (reopened, report) = try await openArchive(folder)
            #expect(report.quarantinedRows.isEmpty)
            #expect(reopened.index.instance(record.sopInstanceUID) != nil)
        }
    }

    // MARK: bounds

    @Test func aMegabyteTextValueIsStoredButNotKeptInTheCatalogueOrInlined() async throws {
        let (service, _) = try await archive()
        let textValue = Tag(0x0040, 0xA160)
        var dataset = Sample.dataset()
        dataset.set(textValue, .UT, String(repeating: "lorem ipsum ", count: (1 << 20) / 12))
        guard let (record, _) = await expectStored(service, try Sample.bytes(dataset)) else { return }
        let kept = try #require(service.index.instance(record.sopInstanceUID))
        #expect(kept.attributes[textValue] == nil)
        #expect(kept.attributes.elements.reduce(0) { $0 + IndexBounds.size($1) } <= IndexBounds.maximumInstanceBytes)
        let json = try #require(try await service.index.metadataJSON(record.sopInstanceUID))
        #expect(json.contains("\"0040A160\":{\"vr\":\"UT\",\"BulkDataURI\":\"bulkdata/0040A160\"}"))
        #expect(json.utf8.count < 64 * 1024)
    }

    @Test func theCatalogueKeepsAtMostSixtyFourKiBPerInstanceSmallValuesFirst() async {
        var instance = Dataset()
        for index in 0..<100 {
            instance.set(Tag(0x0011, UInt16(0x1000 + index)), .UT, String(repeating: "x", count: 900))
        }
        instance.set(.sopInstanceUID, .UI, "1.2.3.4")
        var study = Dataset()
        study.set(.patientID, .LO, "P-1")
        study.set(.studyDescription, .LO, String(repeating: "y", count: 2000))
        let (boundedStudy, _, boundedInstance) = IndexBounds.bound(
            study: study, series: Dataset(), instance: instance)
        let total = (boundedStudy.elements + boundedInstance.elements).reduce(0) { $0 + IndexBounds.size($1) }
        #expect(total <= IndexBounds.maximumInstanceBytes)
        #expect(boundedInstance.count > 60)
        #expect(boundedInstance[.sopInstanceUID] != nil)
        #expect(boundedStudy[.patientID] != nil)
        #expect(boundedStudy[.studyDescription] == nil)
    }

    // MARK: patient identity

    @Test func anInstanceUnderAnotherPatientIDIsRefused() async throws {
        let (service, _) = try await archive()
        let study = Sample.uid()
        _ = await expectStored(service, try Sample.instance(study: study, patientID: "P-1"))
        let outcome = await service.store(try Sample.instance(study: study, patientID: "P-2"))
        #expect(failure(outcome)?.reason == FailureReason.cannotUnderstand)
        #expect(failure(outcome)?.message == "the patient (ID or name) differs from the one stored for this study")
        #expect(service.index.catalog().instances.count == 1)
    }

    @Test func anInstanceUnderAnotherIssuerOfPatientIDIsRefused() async throws {
        let (service, _) = try await archive()
        let study = Sample.uid()
        _ = await expectStored(service, try Sample.instance(study: study, issuer: "CLINIC-A"))
        let outcome = await service.store(try Sample.instance(study: study, issuer: "CLINIC-B"))
        #expect(failure(outcome)?.reason == FailureReason.cannotUnderstand)
        #expect(failure(outcome)?.message.contains("P-1") == false)
    }

    @Test func aPatientIDDifferingOnlyInSurroundingSpacesIsTheSame() async throws {
        let (service, _) = try await archive()
        let study = Sample.uid()
        _ = await expectStored(service, try Sample.instance(study: study, patientID: "P-1"))
        guard let (_, warnings) = await expectStored(service, try Sample.instance(study: study, patientID: " P-1 "))
        else {
            return
        }
        #expect(warnings.isEmpty)
    }

    @Test func aNameDifferingOnlyInCaseOrPaddingIsStoredWithAWarning() async throws {
        let (service, _) = try await archive()
        let study = Sample.uid()
        _ = await expectStored(service, try Sample.instance(study: study, name: "Doe^Jane"))
        guard let (_, warnings) = await expectStored(service, try Sample.instance(study: study, name: "DOE^ jane ^^"))
        else {
            return
        }
        #expect(
            warnings == [
                StoreWarning(
                    reason: WarningReason.coercionOfDataElements,
                    message: "Patient's Name differs from the study's only in case or padding")
            ])
    }

    @Test func aReallyDifferentNameIsRefused() async throws {
        let (service, _) = try await archive()
        let study = Sample.uid()
        _ = await expectStored(service, try Sample.instance(study: study, name: "Doe^Jane"))
        let outcome = await service.store(try Sample.instance(study: study, name: "Roe^Jane"))
        #expect(failure(outcome)?.reason == FailureReason.cannotUnderstand)
        #expect(failure(outcome)?.message.contains("Doe") == false)
        #expect(failure(outcome)?.message.contains("Roe") == false)
    }

    @Test func aNewVersionKeepsTheReplacedOneThroughARestart() async throws {
        let folder = try temporaryFolder()
        let (study, series, sop) = (Sample.uid(), Sample.uid(), Sample.uid())
        var replaced = ""
        var current = ""
        do {
            let service = try await openArchive(folder, duplicates: .newVersion).0
            guard
                let (first, _) = await expectStored(
                    service, try Sample.instance(study: study, series: series, sop: sop, description: "first")),
                let (second, _) = await expectStored(
                    service, try Sample.instance(study: study, series: series, sop: sop, description: "second"))
            else { return }
            #expect(first.blob.id != second.blob.id)
            #expect(try await service.blobs.exists(first.blob.id))
            #expect(try await service.index.referencedBlobIDs().contains(first.blob.id))
            (replaced, current) = (first.blob.id, second.blob.id)
        }
        let (reopened, report) = try await openArchive(folder, duplicates: .newVersion)
        #expect(report.quarantinedBlobs == 0)
        #expect(try await reopened.blobs.exists(replaced))
        #expect(reopened.index.instance(sop)?.blob.id == current)
    }

    // MARK: what real clients send

    @Test func aStreamWithoutPreambleIsStoredWithOne() async throws {
        let (service, _) = try await archive()
        let bytes = try Sample.instance()
        guard let (record, warnings) = await expectStored(service, bytes.dropFirst(132)) else { return }
        #expect(warnings.isEmpty)
        #expect(try await service.read(record) == bytes)
    }

    @Test func aDifferingMediaStorageSOPInstanceUIDIsCorrectedWithAWarning() async throws {
        let (service, _) = try await archive()
        let sop = "1.2.826.0.1.3680043.8.498.12345"
        var bytes = try Sample.instance(sop: sop)
        // The meta group's copy (the first one) becomes another UID of the same length.
        let range = try #require(bytes.range(of: Data(sop.utf8)))
        #expect(range.lowerBound < 400)
        bytes.replaceSubrange(range, with: Data("1.2.826.0.1.3680043.8.498.99999".utf8))
        guard let (record, warnings) = await expectStored(service, bytes) else { return }
        #expect(record.sopInstanceUID == sop)
        #expect(
            warnings == [
                StoreWarning(
                    reason: WarningReason.coercionOfDataElements,
                    message: "Media Storage SOP Instance UID corrected to the SOP Instance UID")
            ])
        let stored = try Part10.read(data: try await service.read(record))
        #expect(stored.meta.string(.mediaStorageSOPInstanceUID) == sop)
    }
}
