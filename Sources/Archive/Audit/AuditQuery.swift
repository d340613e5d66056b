import Foundation

/// One entry of a clinic's audit chain as the audit API returns it (what the line holds, without its MAC).
public struct AuditEntry: Sendable, Equatable {
    public var sequence: Int
    /// ISO 8601, UTC, milliseconds.
    public var time: String
    public var actor: String
    public var address: String
    public var action: String
    public var study: String?
    public var series: [String]
    public var instances: [String]
    public var outcome: String
    public var detail: String?
    /// The patient's keyed hash, when the event names one.
    public var patient: String?
    public var request: String?
    public var resultStudies: [String]
    public var resultPatients: [String]

    /// Reads an entry from its line; nil for a line that is not one.
    public init?(line: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
            let sequence = (object["seq"] as? NSNumber)?.intValue, let time = object["time"] as? String,
            let actor = object["actor"] as? String, let action = object["action"] as? String,
            let outcome = object["outcome"] as? String
        else { return nil }
        self.sequence = sequence
        self.time = time
        self.actor = actor
        address = object["address"] as? String ?? ""
        self.action = action
        study = object["study"] as? String
        series = object["series"] as? [String] ?? []
        instances = object["instances"] as? [String] ?? []
        self.outcome = outcome
        detail = object["detail"] as? String
        patient = object["patient"] as? String
        request = object["request"] as? String
        resultStudies = object["resultStudies"] as? [String] ?? []
        resultPatients = object["resultPatients"] as? [String] ?? []
    }

    /// Every patient the entry is about: the one it names, those its answer listed, those its action names.
    public var patients: Set<String> {
        var keys = Set(resultPatients)
        if let patient { keys.insert(patient) }
        var rest = Substring(action)
        while let range = rest.range(of: "patient ") {
            let candidate = rest[range.upperBound...].prefix(64)
            if candidate.count == 64, candidate.allSatisfy(\.isHexDigit) { keys.insert(String(candidate)) }
            rest = rest[range.upperBound...]
        }
        return keys
    }
}

/// What `GET /api/v1/audit` asks: a time range (inclusive, ISO 8601 instants or days), a patient (keyed hash), a
/// user (`tenant/username` or the username alone).
public struct AuditFilter: Sendable, Equatable {
    public var from: String?
    public var to: String?
    public var patient: String?
    public var user: String?

    public init(from: String? = nil, to: String? = nil, patient: String? = nil, user: String? = nil) {
        self.from = from
        self.to = to
        self.patient = patient
        self.user = user
    }

    public func matches(_ entry: AuditEntry) -> Bool {
        // Timestamps are fixed-width ISO 8601 (UTC), so text order is time order; a day bound covers its day.
        if let from, entry.time < from { return false }
        if let to, entry.time > (to.count == 10 ? to + "T23:59:59.999Z" : to) { return false }
        if let user, entry.actor != user && !entry.actor.hasSuffix("/" + user) { return false }
        if let patient, !entry.patients.contains(patient) { return false }
        return true
    }
}

extension AuditTrail {
    /// The entries of the chain that match, in order (incomplete or unreadable lines left out).
    public func entries(matching filter: AuditFilter) async throws(ArchiveError) -> [AuditEntry] {
        try await lines().compactMap { AuditEntry(line: $0) }.filter(filter.matches)
    }
}

extension AuditLog {
    public func lines() async throws(ArchiveError) -> [String] {
        let folder = self.folder
        return try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
            Self.completeLines(folder: folder)
        }
    }
}

extension AuditLog {
    public func tail(after cursor: Int, limit: Int) async throws(ArchiveError) -> (lines: [String], cursor: Int) {
        let path = folder.appendingPathComponent("audit.log").path
        return try await BlockingPool.storage.runTyped { () throws(ArchiveError) in
            guard let handle = FileHandle(forReadingAtPath: path) else { return ([], cursor) }
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()).map(Int.init) ?? 0
            // A log shorter than the cursor was replaced: start again from its beginning.
            let start = (0...size).contains(cursor) ? cursor : 0
            do {
                try handle.seek(toOffset: UInt64(start))
            } catch {
                throw ArchiveError(.io, "the audit log cannot be read")
            }
            let wanted = max(1 << 20, limit * 2048)
            var chunk = (try? handle.read(upToCount: wanted)) ?? Data()
            // One line longer than the chunk (an answer naming thousands of instances): read on to its end.
            if chunk.count == wanted, !chunk.contains(0x0A) {
                chunk += (try? handle.read(upToCount: 64 << 20)) ?? Data()
            }
            guard let end = chunk.lastIndex(of: 0x0A) else { return ([], start) }
            let complete = chunk[chunk.startIndex...end]
            let lines = complete.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
            return (lines, start + complete.count)
        }
    }
}

extension PostgresAuditTrail {
    public func tail(after cursor: Int, limit: Int) async throws(ArchiveError) -> (lines: [String], cursor: Int) {
        let page = try await lines(after: cursor, limit: limit)
        return (page.map(\.1), page.last?.0 ?? cursor)
    }

    public func lines() async throws(ArchiveError) -> [String] {
        var all: [String] = []
        var after = 0
        while true {
            let page = try await lines(after: after, limit: 5000)
            all += page.map(\.1)
            guard let last = page.last, page.count == 5000 else { return all }
            after = last.0
        }
    }
}
