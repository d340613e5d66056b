import Crypto
import DICOMCore
import Foundation

/// One audited access. Carries identifiers of objects (UIDs) and of the actor, never PHI.
public struct AuditEvent: Sendable, Equatable {
    public var actor: String
    public var address: String
    /// What was done: `stow`, `qido`, `wado`, `upload`, ...
    public var action: String
    public var studyUID: String?
    public var seriesUIDs: [String]
    public var instanceUIDs: [String]
    /// `success`, `failure`, `partial`, ...
    public var outcome: String
    public var time: Date
    /// A sentence for the log's own events (repairs, losses); never PHI.
    public var detail: String?
    /// The patient the resources belong to, as a keyed hash (`KeyHierarchy.patientKey`), never the ID.
    public var patient: String?
    /// The request's id (also in the answer's `X-Request-ID`), to join the event with logs.
    public var request: String?
    /// The studies a search answered with (by UID) and their patients (keyed hashes): who saw what in a result
    /// list, not only what they asked for.
    public var resultStudyUIDs: [String] = []
    public var resultPatients: [String] = []

    public init(
        actor: String, address: String, action: String, studyUID: String? = nil, seriesUIDs: [String] = [],
        instanceUIDs: [String] = [], outcome: String, time: Date = Date(), detail: String? = nil,
        patient: String? = nil, request: String? = nil
    ) {
        self.patient = patient
        self.request = request
        self.actor = actor
        self.address = address
        self.action = action
        self.studyUID = studyUID
        self.seriesUIDs = seriesUIDs
        self.instanceUIDs = instanceUIDs
        self.outcome = outcome
        self.time = time
        self.detail = detail
    }
}

/// The chain's last sequence number and MAC, sealed (HMAC-SHA256 under the audit key) so that it cannot be forged.
/// Kept outside the audit folder (in the index), so that a removed or cut log is detected.
public struct AuditAnchor: Sendable, Equatable {
    public var sequence: Int
    public var mac: String
    public var seal: String

    public init(sequence: Int, mac: String, seal: String) {
        self.sequence = sequence
        self.mac = mac
        self.seal = seal
    }
}

/// Where an `AuditLog` keeps its anchor outside its own folder (the index).
public protocol AuditAnchorStore: Sendable {
    func saveAuditAnchor(_ anchor: AuditAnchor) throws(ArchiveError)
    func auditAnchor() throws(ArchiveError) -> AuditAnchor?
}

/// Something the chain itself records about its own history.
public enum AuditIncident: Sendable, Equatable {
    /// At start-up, an incomplete last line (a torn write) of `bytesRemoved` bytes was cut; entry `entry` says so.
    case repair(entry: Int, bytesRemoved: Int)
    /// At start-up, the log ended at `lastSequence` but was anchored at `anchoredSequence` with `anchoredMAC`:
    /// entries were lost (log removed or cut). Entry `entry` records it and starts a new segment of the chain.
    case loss(entry: Int, lastSequence: Int, anchoredSequence: Int, anchoredMAC: String)
    /// An incomplete last line of `bytes` bytes not repaired yet (the server cuts it at its next start).
    case tornLine(bytes: Int)
}

/// The result of checking a log: intact or broken, and the incidents its chain records.
public struct AuditReport: Sendable, Equatable {
    public var verdict: AuditLog.Verdict
    public var incidents: [AuditIncident]
}

/// The append-only audit trail: one JSON line per event in `audit.log`, each carrying the HMAC-SHA256 (key derived
/// from the master key) of the previous entry's MAC and its own body, so that changing, deleting or reordering a
/// line breaks the chain and a forged line cannot be made without the key. `head` holds the last sequence number
/// and MAC, itself MAC'd, so that cutting the tail is detected too; the same anchor is kept in the index (an
/// `AuditAnchorStore`) so that removing the whole folder is detected as well.
///
/// Start-up never refuses what a crash or a full disk can cause: an incomplete last line (a torn write) is cut and
/// the repair recorded in the chain; a log behind its anchor (removed or cut) gets a security-alert entry that
/// names the lost segment (anchored sequence and MAC) and starts a new segment of the chain from it. A changed,
/// reordered or forged entry still refuses start-up.
public final class AuditLog: @unchecked Sendable {
    public let folder: URL
    private let key: SymmetricKey
    private let anchorStore: (any AuditAnchorStore)?
    private let lock = NSLock()
    private var lastSequence: Int
    private var lastMAC: String
    private var descriptor: Int32 = -1
    /// Length of the log up to the end of its last complete line.
    private var validLength: off_t = 0
    private var dirty = false
    private var flusherRunning = false
    /// Writes one line; replaceable by tests to simulate a failing disk.
    var writeLine: (Int32, Data) -> Bool = { writeAll($0, $1) }

    static let genesis = String(repeating: "0", count: 64)
    static let repairAction = "audit repair"
    static let alertAction = "security alert"

    /// Opens (or creates) the log in `folder`. With `anchor`, the chain is also anchored there (the index), and a
    /// log found behind that anchor is recorded as a loss rather than passing as intact.
    public init(folder: URL, keys: KeyHierarchy, anchor: (any AuditAnchorStore)? = nil) throws(ArchiveError) {
        self.folder = folder
        self.key = keys.tenantDerivedKey("facet-audit-chain")
        self.anchorStore = anchor
        try createPrivateDirectory(folder)
        let stored = try anchor?.auditAnchor()
        let scan = Self.scan(folder: folder, key: key, anchor: stored)
        if let broken = scan.broken {
            throw ArchiveError(.audit, "audit log is broken at entry \(broken.entry): \(broken.reason)")
        }
        if let reason = scan.headProblem {
            throw ArchiveError(.audit, "audit log head: \(reason)")
        }
        if scan.head == .absent && scan.lastSequence > 0 {
            throw ArchiveError(.audit, "audit log head is missing")
        }
        if scan.indexAnchor == .unsealed {
            throw ArchiveError(.audit, "the index's audit anchor does not match its MAC")
        }
        lastSequence = scan.lastSequence
        lastMAC = scan.lastMAC
        validLength = off_t(scan.validLength)
        try openLog()
        if scan.tornBytes > 0 {
            // A torn write: cut the incomplete line, then say so in the chain.
            guard ftruncate(descriptor, validLength) == 0, fsync(descriptor) == 0 else {
                throw ArchiveError(.io, "audit log cannot be repaired")
            }
            try appendLocked(
                AuditEvent(
                    actor: "facet", address: "", action: Self.repairAction, outcome: "success",
                    detail: "removed \(scan.tornBytes) bytes of an incomplete last line (a torn write)"),
                extra: "\"repaired\":{\"bytes\":\(scan.tornBytes)},", durability: .immediate)
        }
        if let lost = scan.lostAnchor {
            // The log is behind its anchor: entries are gone. Record it and carry on from the anchor.
            let sequence = max(lost.sequence, lastSequence) + 1
            let detail =
                lost.sequence > lastSequence
                ? "entries \(lastSequence + 1) to \(lost.sequence) are missing: the audit log was removed or cut"
                : "entry \(lost.sequence) is not the anchored one: the audit log was replaced"
            try appendLocked(
                AuditEvent(
                    actor: "facet", address: "", action: Self.alertAction, outcome: "audit log loss", detail: detail),
                extra: "\"lost\":{\"after\":\(lastSequence),\"through\":\(lost.sequence),\"mac\":\"\(lost.mac)\"},",
                sequence: sequence, durability: .immediate)
        }
        // A crash between appending a line and moving the head leaves verified lines beyond it: anchor them.
        try writeHead()
    }

    var logURL: URL { folder.appendingPathComponent("audit.log") }
    var headURL: URL { folder.appendingPathComponent("head") }

    /// How soon an appended event must be on stable storage.
    public enum Durability: Sendable {
        /// Written, fsynced and anchored in `head` before `append` returns (changes: stores, uploads).
        case immediate
        /// Written to the log before `append` returns (it survives the process being killed); fsynced and anchored
        /// by a background flush within `batchInterval` (reads: searches, retrievals).
        case batched
    }

    /// The longest a batched event waits for its fsync.
    public static let batchInterval: TimeInterval = 0.05

    /// Appends one event and moves the chain on. On failure nothing of the event stays in the log.
    public func append(_ event: AuditEvent, durability: Durability = .immediate) throws(ArchiveError) {
        lock.lock()
        defer { lock.unlock() }
        try appendLocked(event, extra: "", durability: durability)
    }

    private func openLog() throws(ArchiveError) {
        guard descriptor < 0 else { return }
        descriptor = open(logURL.path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
        guard descriptor >= 0 else { throw ArchiveError(.io, "audit log cannot be opened") }
    }

    private func appendLocked(
        _ event: AuditEvent, extra: String, sequence explicit: Int? = nil, durability: Durability
    ) throws(ArchiveError) {
        try openLog()
        // A failed write whose cut also failed may have left bytes past the last whole line: cut them first, or the
        // next line would start mid-line and break the chain.
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else { throw ArchiveError(.io, "audit log cannot be written") }
        if end != validLength {
            guard ftruncate(descriptor, validLength) == 0 else {
                throw ArchiveError(.io, "audit log cannot be written")
            }
        }
        let sequence = explicit ?? lastSequence + 1
        let body = Self.body(sequence: sequence, event: event, previous: lastMAC, extra: extra)
        let mac = Self.mac(key, previous: lastMAC, body: body)
        let line = Data((Self.line(body: body, mac: mac) + "\n").utf8)
        guard writeLine(descriptor, line) else {
            // Whatever part of the line reached the file is cut again: a partial line would break the chain.
            _ = ftruncate(descriptor, validLength)
            throw ArchiveError(.io, "audit log cannot be written")
        }
        if durability == .immediate {
            guard fsync(descriptor) == 0 else {
                _ = ftruncate(descriptor, validLength)
                throw ArchiveError(.io, "audit log cannot be written")
            }
        }
        validLength += off_t(line.count)
        lastSequence = sequence
        lastMAC = mac
        switch durability {
        case .immediate:
            try writeHead()
            dirty = false
        case .batched:
            dirty = true
            startFlusher()
        }
    }

    /// Fsyncs the log and anchors the head if batched events are pending. Called by the background flush and at
    /// shutdown.
    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        guard dirty, descriptor >= 0 else { return }
        if fsync(descriptor) == 0, (try? writeHead()) != nil { dirty = false }
    }

    private func startFlusher() {
        guard !flusherRunning else { return }
        flusherRunning = true
        let thread = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: AuditLog.batchInterval)
                guard let log = self else { return }
                log.flush()
            }
        }
        thread.name = "facet-audit-flush"
        thread.start()
    }

    deinit {
        if dirty && descriptor >= 0 {
            _ = fsync(descriptor)
            try? writeHead()
        }
        if descriptor >= 0 { close(descriptor) }
    }

    /// Anchors the chain: `head` in the folder (written beside it, fsynced, renamed over it, folder fsynced, so a
    /// full disk leaves the old head whole) and the anchor in the index.
    private func writeHead() throws(ArchiveError) {
        let anchor = "\(lastSequence) \(lastMAC)"
        let seal = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(("head " + anchor).utf8), using: key))
        try Self.replaceDurably(headURL, Data("\(anchor) \(seal)\n".utf8))
        try anchorStore?.saveAuditAnchor(Self.anchor(key, sequence: lastSequence, mac: lastMAC))
    }

    static func anchor(_ key: SymmetricKey, sequence: Int, mac: String) -> AuditAnchor {
        AuditAnchor(sequence: sequence, mac: mac, seal: anchorSeal(key, sequence: sequence, mac: mac))
    }

    static func anchorSeal(_ key: SymmetricKey, sequence: Int, mac: String) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data("index anchor \(sequence) \(mac)".utf8), using: key))
    }

    /// Replaces a small file without ever rewriting it in place: a temporary file beside it is written whole and
    /// fsynced, then renamed over it, and the folder fsynced. If the disk is full, the old file stays as it was.
    static func replaceDurably(_ url: URL, _ data: Data) throws(ArchiveError) {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "audit head cannot be written") }
        let written = writeAll(fd, data)
        let synced = written && fsync(fd) == 0
        close(fd)
        guard synced, rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw ArchiveError(.io, "audit head cannot be written")
        }
        syncDirectory(folder)
    }

    /// Result of checking a log.
    public enum Verdict: Sendable, Equatable {
        /// `entries`: the last sequence number of the chain (the number of entries, lost ones included).
        case intact(entries: Int, lastMAC: String)
        case broken(entry: Int, reason: String)
    }

    /// Checks the whole chain and the head. `entry` in a broken verdict is the sequence number that is wrong (the
    /// 1-based line, as long as nothing was lost).
    public static func verify(folder: URL, keys: KeyHierarchy) -> Verdict {
        verify(folder: folder, key: keys.tenantDerivedKey("facet-audit-chain"))
    }

    static func verify(folder: URL, key: SymmetricKey) -> Verdict {
        report(folder: folder, key: key, anchor: nil).verdict
    }

    /// Checks the chain, the head and the anchor kept outside the folder (pass what the index holds, or nil), and
    /// lists the incidents the chain records. A log behind its anchor with no loss recorded is broken.
    public static func check(folder: URL, keys: KeyHierarchy, anchor: AuditAnchor?) -> AuditReport {
        report(folder: folder, key: keys.tenantDerivedKey("facet-audit-chain"), anchor: anchor)
    }

    static func report(folder: URL, key: SymmetricKey, anchor: AuditAnchor?) -> AuditReport {
        let scan = scan(folder: folder, key: key, anchor: anchor)
        var incidents = scan.incidents
        if scan.tornBytes > 0 { incidents.append(.tornLine(bytes: scan.tornBytes)) }
        func broken(_ entry: Int, _ reason: String) -> AuditReport {
            AuditReport(verdict: .broken(entry: entry, reason: reason), incidents: incidents)
        }
        if let failure = scan.broken { return broken(failure.entry, failure.reason) }
        let next = scan.lastSequence + 1
        if let reason = scan.headProblem { return broken(next, reason) }
        switch scan.head {
        case .ahead(let sequence, _):
            return broken(next, "entries \(next) to \(sequence) are missing (tail cut)")
        case .differs(let sequence, _):
            return broken(sequence, "entry differs from the anchored one")
        case .absent where scan.lastSequence > 0:
            return broken(next, "head is missing")
        default:
            break
        }
        switch scan.indexAnchor {
        case .unsealed:
            return broken(next, "the index's audit anchor does not match its MAC")
        case .ahead(let sequence, _):
            return broken(
                next,
                "the index anchors entry \(sequence) but the log ends at \(scan.lastSequence) (log removed or cut)")
        case .differs(let sequence, _):
            return broken(sequence, "entry differs from the one anchored in the index (log replaced)")
        default:
            return AuditReport(
                verdict: .intact(entries: scan.lastSequence, lastMAC: scan.lastMAC), incidents: incidents)
        }
    }

    /// How an anchor (the head, or the index's) relates to the log.
    enum AnchorState: Equatable {
        case absent
        case consistent
        /// Names an entry beyond the log's end.
        case ahead(sequence: Int, mac: String)
        /// Names an entry the log holds with another MAC (or not at all).
        case differs(sequence: Int, mac: String)
        /// Its seal does not match (forged or damaged).
        case unsealed
    }

    /// What one pass over the log found.
    struct Scan {
        var broken: (entry: Int, reason: String)?
        var lastSequence = 0
        var lastMAC = AuditLog.genesis
        /// Bytes up to the end of the last complete line.
        var validLength = 0
        /// Bytes after the last newline (an incomplete line).
        var tornBytes = 0
        var incidents: [AuditIncident] = []
        var headProblem: String?
        var head = AnchorState.absent
        var indexAnchor = AnchorState.absent

        /// The anchor the log is behind, if any (the further of the two).
        var lostAnchor: (sequence: Int, mac: String)? {
            var found: (sequence: Int, mac: String)?
            for state in [head, indexAnchor] {
                switch state {
                case .ahead(let sequence, let mac), .differs(let sequence, let mac):
                    if found == nil || sequence > found?.sequence ?? 0 { found = (sequence, mac) }
                default:
                    break
                }
            }
            return found
        }
    }

    static func scan(folder: URL, key: SymmetricKey, anchor: AuditAnchor?) -> Scan {
        var result = Scan()
        // The head is read first, so that the entry it names can be checked as the scan passes it.
        var headAnchor: (sequence: Int, mac: String)?
        if let head = try? String(contentsOf: folder.appendingPathComponent("head"), encoding: .utf8) {
            let parts = head.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if parts.count == 3, let sequence = Int(parts[0]), sequence >= 0 {
                let seal = hex(
                    HMAC<SHA256>.authenticationCode(for: Data("head \(parts[0]) \(parts[1])".utf8), using: key))
                if seal == parts[2] {
                    headAnchor = (sequence, parts[1])
                } else {
                    result.headProblem = "head does not match its MAC"
                }
            } else {
                result.headProblem = "head is damaged"
            }
        }
        var indexAnchor: (sequence: Int, mac: String)?
        if let anchor {
            if anchor.sequence >= 0, anchor.seal == anchorSeal(key, sequence: anchor.sequence, mac: anchor.mac) {
                indexAnchor = (anchor.sequence, anchor.mac)
            } else {
                result.indexAnchor = .unsealed
            }
        }
        var headMAC: String? = headAnchor?.sequence == 0 ? genesis : nil
        var indexMAC: String? = indexAnchor?.sequence == 0 ? genesis : nil

        let log = (try? Data(contentsOf: folder.appendingPathComponent("audit.log"))) ?? Data()
        let lines = log.split(separator: 0x0A, omittingEmptySubsequences: false)
        var previous = genesis
        var sequence = 0
        var offset = 0
        for (index, raw) in lines.enumerated() {
            if index == lines.count - 1 {
                // After the last newline: nothing, or an incomplete line (a torn write).
                result.tornBytes = raw.count
                break
            }
            let expected = sequence + 1
            let number: Int
            let mac: String
            switch checkLine(String(decoding: raw, as: UTF8.self), expected: expected, previous: previous, key: key) {
            case .failure(let failure): return failed(result, failure.entry, failure.reason)
            case .success(let entry):
                (number, mac) = (entry.sequence, entry.mac)
                if let incident = incident(entry.body, entry: number) { result.incidents.append(incident) }
            }
            if number == headAnchor?.sequence { headMAC = mac }
            if number == indexAnchor?.sequence { indexMAC = mac }
            previous = mac
            sequence = number
            offset += raw.count + 1
        }
        result.lastSequence = sequence
        result.lastMAC = previous
        result.validLength = offset
        if let headAnchor {
            result.head = state(headAnchor, found: headMAC, last: sequence)
        }
        if let indexAnchor {
            result.indexAnchor = state(indexAnchor, found: indexMAC, last: sequence)
        }
        return result
    }

    /// One entry of the chain, checked.
    struct CheckedLine {
        var sequence: Int
        var mac: String
        /// The entry without its MAC (what the MAC covers, after the previous MAC).
        var body: String
    }

    /// Why an entry does not belong in the chain where it stands.
    struct LineFailure: Error {
        var entry: Int
        var reason: String
    }

    /// Checks one line (without its newline) as the entry after `previous`, expected to be number `expected`: its
    /// form, its sequence number (only a recorded loss may skip ahead), its link to the previous entry and its MAC.
    /// Shared by the file log and the chain kept in PostgreSQL.
    static func checkLine(_ line: String, expected: Int, previous: String, key: SymmetricKey)
        -> Result<CheckedLine, LineFailure>
    {
        let suffixLength = ",\"mac\":\"".count + 64 + 2
        guard line.count > suffixLength, line.hasSuffix("\"}"),
            let range = line.range(of: ",\"mac\":\"", options: .backwards)
        else { return .failure(LineFailure(entry: expected, reason: "line is not an audit entry")) }
        let body = String(line[..<range.lowerBound]) + "}"
        let mac = String(line[range.upperBound...].dropLast(2))
        guard let number = leadingSequence(body) else {
            return .failure(LineFailure(entry: expected, reason: "line is not an audit entry"))
        }
        let isLoss = body.contains("\"action\":\"\(alertAction)\"") && body.contains(",\"lost\":{")
        // Only a recorded loss, itself MAC'd in the chain, may move the sequence on past missing entries.
        guard number == expected || (isLoss && number > expected) else {
            return .failure(
                LineFailure(
                    entry: expected, reason: "sequence number is not \(expected) (a line was removed or moved)"))
        }
        guard body.hasSuffix(",\"prev\":\"\(previous)\"}") else {
            return .failure(
                LineFailure(entry: expected, reason: "does not follow the previous entry (removed or reordered)"))
        }
        guard mac == Self.mac(key, previous: previous, body: body) else {
            return .failure(LineFailure(entry: number, reason: "content does not match its MAC (changed)"))
        }
        return .success(CheckedLine(sequence: number, mac: mac, body: body))
    }

    /// The complete lines of a folder's log (an incomplete last line left out), without their newlines.
    static func completeLines(folder: URL) -> [String] {
        let log = (try? Data(contentsOf: folder.appendingPathComponent("audit.log"))) ?? Data()
        var lines = log.split(separator: 0x0A, omittingEmptySubsequences: false)
        lines.removeLast()
        return lines.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The line an entry is written as: its body with its MAC.
    static func line(body: String, mac: String) -> String {
        String(body.dropLast()) + ",\"mac\":\"\(mac)\"}"
    }

    private static func failed(_ scan: Scan, _ entry: Int, _ reason: String) -> Scan {
        var result = scan
        result.broken = (entry, reason)
        return result
    }

    private static func state(_ anchor: (sequence: Int, mac: String), found: String?, last: Int) -> AnchorState {
        if anchor.sequence > last { return .ahead(sequence: anchor.sequence, mac: anchor.mac) }
        return found == anchor.mac ? .consistent : .differs(sequence: anchor.sequence, mac: anchor.mac)
    }

    /// The `seq` a body starts with.
    private static func leadingSequence(_ body: String) -> Int? {
        let prefix = "{\"seq\":"
        guard body.hasPrefix(prefix) else { return nil }
        let digits = body.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 18, body.dropFirst(prefix.count + digits.count).first == "," else {
            return nil
        }
        return Int(digits)
    }

    /// The incident an entry of the log's own records (a repair or a loss), if it is one.
    static func incident(_ body: String, entry: Int) -> AuditIncident? {
        guard body.contains("\"action\":\"\(repairAction)\"") || body.contains("\"action\":\"\(alertAction)\""),
            let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        else { return nil }
        if let repaired = object["repaired"] as? [String: Any], let bytes = repaired["bytes"] as? Int {
            return .repair(entry: entry, bytesRemoved: bytes)
        }
        if let lost = object["lost"] as? [String: Any], let after = lost["after"] as? Int,
            let through = lost["through"] as? Int, let mac = lost["mac"] as? String
        {
            return .loss(entry: entry, lastSequence: after, anchoredSequence: through, anchoredMAC: mac)
        }
        return nil
    }

    /// `extra`: fields of the log's own events (`"name":value,`), placed before `prev`.
    static func body(sequence: Int, event: AuditEvent, previous: String, extra: String = "") -> String {
        let quote = DICOMJSON.quote
        func list(_ values: [String]) -> String { "[" + values.map(quote).joined(separator: ",") + "]" }
        // Optional fields appear only when set, so that older lines keep their exact bytes.
        var detail = event.detail.map { "\"detail\":\(quote($0))," } ?? ""
        if let patient = event.patient { detail += "\"patient\":\(quote(patient))," }
        if let request = event.request { detail += "\"request\":\(quote(request))," }
        if !event.resultStudyUIDs.isEmpty { detail += "\"resultStudies\":\(list(event.resultStudyUIDs))," }
        if !event.resultPatients.isEmpty { detail += "\"resultPatients\":\(list(event.resultPatients))," }
        return "{\"seq\":\(sequence),\"time\":\(quote(Formatting.timestamp(event.time))),"
            + "\"actor\":\(quote(event.actor)),\"address\":\(quote(event.address)),\"action\":\(quote(event.action)),"
            + "\"study\":\(event.studyUID.map(quote) ?? "null"),\"series\":\(list(event.seriesUIDs)),"
            + "\"instances\":\(list(event.instanceUIDs)),\"outcome\":\(quote(event.outcome)),"
            + detail + extra + "\"prev\":\"\(previous)\"}"
    }

    static func mac(_ key: SymmetricKey, previous: String, body: String) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data((previous + body).utf8), using: key))
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        Formatting.hex(bytes)
    }
}
