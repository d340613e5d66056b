import DICOMCore
import Foundation

/// A soft-deleted instance in the trash (issue 12 §4): restorable for 30 days after its deletion; after that it is
/// disposed of at the next sweep, unless the retention rule or a legal hold on its patient still requires the
/// record, in which case it stays hidden (not restorable, not served) until neither does.
public struct TrashEntry: Sendable {
    public enum Status: String, Sendable {
        /// Within the 30 days: restorable.
        case restorable
        /// Past the 30 days, kept hidden until `keptUntil` by the retention rule.
        case retained
        /// Past the 30 days, kept hidden by a legal hold on the patient.
        case held
        /// Past the 30 days and no longer required: the next sweep disposes of it.
        case due
    }

    public var item: TrashedInstance
    public var restorableUntil: Date
    public var status: Status
    /// The first day the retention rule lets the record go (`YYYY-MM-DD`), and the rule; nil when unknown.
    public var keptUntil: String?
    public var rule: String?
}

/// What one sweep of the trash did.
public struct TrashSweep: Sendable {
    public var disposed: [TrashedInstance] = []
    public var purge = TrashPurge()
    /// Entries past the 30 days still kept by retention, or by a legal hold.
    public var retained = 0
    public var held = 0
    /// Blobs that could not be removed from storage now: recorded as pending, the next start quarantines them.
    public var blobsLeftForNextStart = 0
}

extension TrashSweep {
    /// How a swept instance went, the detail of its audit event (the record of the disposal).
    public static let method =
        "Disposal of a soft-deleted instance after the 30-day trash and its retention period: the index rows of the "
        + "instance, its earlier versions and its originals were deleted, and their blobs (each holding the only "
        + "wrapped copy of its data key) removed from storage"
}

extension ArchiveService {
    /// How long a soft-deleted instance can be restored.
    public static let trashWindow: TimeInterval = 30 * 86_400

    /// Whether this archive keeps a trash (the embedded index; a PostgreSQL deployment lists its deletions only).
    public var hasTrash: Bool { index is SQLiteStudyIndex }

    private var trashIndex: SQLiteStudyIndex {
        get throws(ArchiveError) {
            guard let index = index as? SQLiteStudyIndex else {
                throw ArchiveError(.invalidRequest, "the trash needs the embedded index")
            }
            return index
        }
    }

    /// Every soft-deleted instance with its state on `now` under the clinic's retention policy and legal holds
    /// (`records`: nil keeps the default policy and no holds).
    public func trashEntries(records: ClinicRecords?, now: Date) async throws(ArchiveError) -> [TrashEntry] {
        let items = try await trashIndex.trash()
        let rule = try await TrashRetention(archive: self, records: records)
        return items.map { rule.entry($0, now: now) }
    }

    /// Restores the trashed instance `seq` within its 30 days: `.notFound` when there is no such entry, `.conflict`
    /// when its 30 days have passed (it is kept hidden for retention, or disposed of) or its UID is stored again.
    public func restoreFromTrash(seq: Int64, now: Date) async throws(ArchiveError) -> InstanceRecord {
        let index = try trashIndex
        guard let item = try await index.trash().first(where: { $0.seq == seq }) else {
            throw ArchiveError(.notFound, "no such instance in the trash")
        }
        guard now < item.instance.deletion.date.addingTimeInterval(Self.trashWindow) else {
            throw ArchiveError(.conflict, "the 30 days in which a deletion can be undone have passed")
        }
        return try await index.restoreDeleted(seq: seq)
    }

    /// Disposes of every trashed instance past its 30 days that neither retention nor a legal hold still requires:
    /// each disposal is audited (per study, the instances named, the method in the detail) before its rows are
    /// purged; then the blobs are deleted. Interrupted anywhere, the next sweep (or start) completes it.
    public func sweepTrash(records: ClinicRecords?, now: Date) async throws(ArchiveError) -> TrashSweep {
        let index = try trashIndex
        let rule = try await TrashRetention(archive: self, records: records)
        var sweep = TrashSweep()
        for item in try await index.trash() {
            switch rule.entry(item, now: now).status {
            case .restorable: break
            case .retained: sweep.retained += 1
            case .held: sweep.held += 1
            case .due: sweep.disposed.append(item)
            }
        }
        guard !sweep.disposed.isEmpty else { return sweep }
        for (study, items) in Dictionary(grouping: sweep.disposed, by: \.instance.studyInstanceUID) {
            let event = AuditEvent(
                actor: "facet", address: "", action: "disposal of trashed instances", studyUID: study,
                seriesUIDs: Array(Set(items.map(\.instance.seriesInstanceUID))).sorted(),
                instanceUIDs: items.map(\.instance.sopInstanceUID), outcome: "success", time: now,
                detail: TrashSweep.method, patient: items.first?.patient)
            do {
                try await audit.record(event, durability: .immediate)
            } catch {
                throw ArchiveError(.audit, "the audit log cannot be written; nothing was disposed of")
            }
        }
        sweep.purge = try await index.purgeDeleted(seqs: sweep.disposed.map(\.seq))
        for id in sweep.purge.blobIDs {
            do {
                try await blobs.delete(id)
                try await index.removePendingBlob(id)
            } catch {
                sweep.blobsLeftForNextStart += 1
            }
        }
        return sweep
    }
}

/// The retention rule as the trash applies it: the clinic's policy, its legal holds, each patient's last visit
/// (their live studies, their treatments, and the trashed instance's own study).
struct TrashRetention {
    let policy: RetentionPolicy
    let held: Set<String>
    let lastVisit: [String: String]

    init(archive: ArchiveService, records: ClinicRecords?) async throws(ArchiveError) {
        policy =
            try await records?.current(.policy, id: RetentionPolicy.recordID, as: RetentionPolicy.self)?.value
            ?? RetentionPolicy()
        held = Set(try await records?.list(.hold, as: LegalHold.self).map(\.patient) ?? [])
        var last: [String: String] = [:]
        for treatment in try await records?.list(.treatment, as: Treatment.self) ?? [] {
            last[treatment.patient] = max(last[treatment.patient] ?? "", treatment.value.date)
        }
        for study in archive.index.catalog().studies.values {
            guard let patient = archive.patientKey(forStudy: study.studyInstanceUID),
                let date = study.attributes.string(.studyDate).flatMap({ try? ClinicTerms.date($0, field: "") })
            else { continue }
            last[patient] = max(last[patient] ?? "", date)
        }
        lastVisit = last
    }

    func entry(_ item: TrashedInstance, now: Date) -> TrashEntry {
        let until = item.instance.deletion.date.addingTimeInterval(ArchiveService.trashWindow)
        // The instance's own visit: its study's date, else the day it was stored, else the day it was deleted
        // (the latest possible, so never a record let go too early).
        let own =
            item.study?.string(.studyDate).flatMap { try? ClinicTerms.date($0, field: "") }
            ?? ClinicTerms.day(of: item.stored ?? item.instance.deletion.date)
        let visit = max(own, item.patient.flatMap { lastVisit[$0] } ?? "")
        let birth = item.study?.string(.patientBirthDate).flatMap { try? ClinicTerms.date($0, field: "") }
        let due = policy.dueDate(lastVisit: visit, birthDate: birth)
        var entry = TrashEntry(
            item: item, restorableUntil: until, status: .restorable, keptUntil: due?.date, rule: due?.rule)
        guard now >= until else { return entry }
        if let patient = item.patient, held.contains(patient) {
            entry.status = .held
        } else if let due, due.date > ClinicTerms.day(of: now) {
            entry.status = .retained
        } else {
            entry.status = .due
        }
        return entry
    }
}
