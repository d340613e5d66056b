import DICOMCodec
import DICOMCore
import Foundation
import Testing

@testable import Archive

/// Small Part-10 instances built in memory (Basic Text SR: no pixel data needed) and archives in temporary folders.
enum Sample {
    static let basicTextSR = "1.2.840.10008.5.1.4.1.1.88.11"

    static func uid() -> String { "2.25.\(UInt64.random(in: 1...UInt64.max))" }

    static func dataset(
        study: String = uid(), series: String = uid(), sop: String = uid(), patientID: String = "P-1",
        name: String = "Doe^Jane", issuer: String? = nil, description: String = "first"
    ) -> Dataset {
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, basicTextSR)
        dataset.set(.sopInstanceUID, .UI, sop)
        dataset.set(.studyInstanceUID, .UI, study)
        dataset.set(.seriesInstanceUID, .UI, series)
        dataset.set(.patientName, .PN, name)
        dataset.set(.patientID, .LO, patientID)
        if let issuer { dataset.set(Tag(0x0010, 0x0021), .LO, issuer) }
        dataset.set(.modality, .CS, "SR")
        dataset.set(.studyDescription, .LO, description)
        return dataset
    }

    static func bytes(_ dataset: Dataset) throws -> Data {
        try Part10.initialize()
        return try Part10.encode(dataset, transferSyntax: UID.explicitVRLittleEndian)
    }

    static func instance(
        study: String = uid(), series: String = uid(), sop: String = uid(), patientID: String = "P-1",
        name: String = "Doe^Jane", issuer: String? = nil, description: String = "first"
    ) throws -> Data {
        try bytes(
            dataset(
                study: study, series: series, sop: sop, patientID: patientID, name: name, issuer: issuer,
                description: description))
    }
}

/// Opens the embedded archive in `folder` (a fresh master key the first time).
func openArchive(
    _ folder: URL, duplicates: DuplicatePolicy = .reject, quarantineDays: Int = 7
) async throws -> (ArchiveService, ArchiveService.StartReport) {
    try Part10.initialize()
    return try await ArchiveService.openEmbedded(
        dataDirectory: folder, duplicatePolicy: duplicates, quarantineDays: quarantineDays, environment: [:])
}

/// Every file name under `folder/blobs`.
func blobFiles(_ folder: URL) -> Set<String> {
    let root = folder.appendingPathComponent("blobs")
    let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL }
    return Set((files ?? []).filter { !$0.hasDirectoryPath }.map(\.lastPathComponent))
}

/// Stores `data` and returns the record, or records an issue.
func expectStored(_ service: ArchiveService, _ data: Data, sourceLocation: SourceLocation = #_sourceLocation)
    async -> (InstanceRecord, [StoreWarning])?
{
    switch await service.store(data) {
    case .stored(let record, _, let warnings):
        return (record, warnings)
    case .failed(_, _, let reason, let message, _):
        Issue.record("not stored: \(String(reason, radix: 16)) \(message)", sourceLocation: sourceLocation)
        return nil
    }
}
