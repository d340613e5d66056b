import Foundation

extension IngestService {
    /// The longest reason a deletion keeps.
    public static let maximumDeletionReasonBytes = 1000

    /// Soft-deletes the instances of one study (what a WADO-RS URL of a study, series or instance resolved to): an
    /// audit intent naming them is fsynced first, then the index moves them out of the catalogue in one transaction,
    /// keeping the reason and the actor sealed beside them. Nothing is erased: blobs and originals stay (the trash:
    /// `ArchiveService.sweepTrash`). `.invalidInput` without a reason of 1 to 1000 bytes; `.audit` when the intent
    /// cannot be written (nothing deleted).
    public func softDelete(
        _ records: [InstanceRecord], reason: String, caller: Caller, intentRecorded: @Sendable () -> Void = {}
    ) async throws(ArchiveError) -> [InstanceRecord] {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.utf8.count <= Self.maximumDeletionReasonBytes else {
            throw ArchiveError(
                .invalidInput, "a deletion needs a reason of 1 to \(Self.maximumDeletionReasonBytes) bytes")
        }
        guard let first = records.first else { return [] }
        let intent = AuditEvent(
            actor: caller.actor, address: caller.address, action: "delete (intent)",
            studyUID: first.studyInstanceUID, seriesUIDs: Array(Set(records.map(\.seriesInstanceUID))).sorted(),
            instanceUIDs: records.map(\.sopInstanceUID), outcome: "intent",
            patient: archive.patientKey(forStudy: first.studyInstanceUID), request: caller.request)
        guard await recordIntent(intent) else {
            throw ArchiveError(.audit, "the audit log cannot be written; nothing was deleted")
        }
        intentRecorded()
        let index = archive.index
        let why = Deletion(reason: reason, actor: caller.actor)
        let uids = records.map(\.sopInstanceUID)
        return try await index.softDelete(uids, why: why)
    }
}
