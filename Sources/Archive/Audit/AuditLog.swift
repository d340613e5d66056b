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

    public init(
        actor: String, address: String, action: String, studyUID: String? = nil, seriesUIDs: [String] = [],
        instanceUIDs: [String] = [], outcome: String, time: Date = Date()
    ) {
        self.actor = actor
        self.address = address
        self.action = action
        self.studyUID = studyUID
        self.seriesUIDs = seriesUIDs
        self.instanceUIDs = instanceUIDs
        self.outcome = outcome
        self.time = time
    }
}

/// The append-only audit trail: one JSON line per event in `audit.log`, each carrying the HMAC-SHA256 (key derived
/// from the master key) of the previous entry's MAC and its own body, so that changing, deleting or reordering a
/// line breaks the chain and a forged line cannot be made without the key. `head` holds the last sequence number
/// and MAC, itself MAC'd, so that cutting the tail is detected too.
public final class AuditLog: @unchecked Sendable {
    public let folder: URL
    private let key: SymmetricKey
    private let lock = NSLock()
    private var lastSequence: Int
    private var lastMAC: String
    private var descriptor: Int32 = -1
    private var dirty = false
    private var flusherRunning = false

    static let genesis = String(repeating: "0", count: 64)

    public init(folder: URL, keys: KeyHierarchy) throws(ArchiveError) {
        self.folder = folder
        self.key = keys.derivedKey("facet-audit-chain")
        try createPrivateDirectory(folder)
        let verdict = Self.verify(folder: folder, key: key)
        switch verdict {
        case .intact(let count, let mac):
            lastSequence = count
            lastMAC = mac
        case .broken(let entry, let reason):
            throw ArchiveError(.audit, "audit log is broken at entry \(entry): \(reason)")
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

    /// Appends one event and moves the chain on.
    public func append(_ event: AuditEvent, durability: Durability = .immediate) throws(ArchiveError) {
        lock.lock()
        defer { lock.unlock() }
        let sequence = lastSequence + 1
        let body = Self.body(sequence: sequence, event: event, previous: lastMAC)
        let mac = Self.mac(key, previous: lastMAC, body: body)
        let line = String(body.dropLast()) + ",\"mac\":\"\(mac)\"}\n"
        if descriptor < 0 {
            descriptor = open(logURL.path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
            guard descriptor >= 0 else { throw ArchiveError(.io, "audit log cannot be opened") }
        }
        guard writeAll(descriptor, Data(line.utf8)) else { throw ArchiveError(.io, "audit log cannot be written") }
        lastSequence = sequence
        lastMAC = mac
        switch durability {
        case .immediate:
            guard fsync(descriptor) == 0 else { throw ArchiveError(.io, "audit log cannot be written") }
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

    private func writeHead() throws(ArchiveError) {
        let anchor = "\(lastSequence) \(lastMAC)"
        let seal = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(("head " + anchor).utf8), using: key))
        try writePrivateFile(headURL, Data("\(anchor) \(seal)\n".utf8))
    }

    /// Result of checking a log.
    public enum Verdict: Sendable, Equatable {
        case intact(entries: Int, lastMAC: String)
        case broken(entry: Int, reason: String)
    }

    /// Checks the whole chain and the head. `entry` in a broken verdict is the 1-based line that is wrong.
    public static func verify(folder: URL, keys: KeyHierarchy) -> Verdict {
        verify(folder: folder, key: keys.derivedKey("facet-audit-chain"))
    }

    static func verify(folder: URL, key: SymmetricKey) -> Verdict {
        let log = (try? Data(contentsOf: folder.appendingPathComponent("audit.log"))) ?? Data()
        var previous = genesis
        var count = 0
        let lines = log.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (offset, raw) in lines.enumerated() {
            if raw.isEmpty && offset == lines.count - 1 { break }
            let number = offset + 1
            let line = String(decoding: raw, as: UTF8.self)
            let suffixLength = ",\"mac\":\"".count + 64 + 2
            guard line.count > suffixLength, line.hasSuffix("\"}"),
                let range = line.range(of: ",\"mac\":\"", options: .backwards)
            else { return .broken(entry: number, reason: "line is not an audit entry") }
            let body = String(line[..<range.lowerBound]) + "}"
            let mac = String(line[range.upperBound...].dropLast(2))
            guard body.hasPrefix("{\"seq\":\(number),") else {
                return .broken(entry: number, reason: "sequence number is not \(number) (a line was removed or moved)")
            }
            guard body.contains("\"prev\":\"\(previous)\"") else {
                return .broken(entry: number, reason: "does not follow the previous entry (removed or reordered)")
            }
            guard mac == Self.mac(key, previous: previous, body: body) else {
                return .broken(entry: number, reason: "content does not match its MAC (changed)")
            }
            previous = mac
            count = number
        }
        // The head must not be ahead of the log (a cut tail).
        if let head = try? String(contentsOf: folder.appendingPathComponent("head"), encoding: .utf8) {
            let parts = head.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard parts.count == 3, let sequence = Int(parts[0]) else {
                return .broken(entry: count + 1, reason: "head is damaged")
            }
            let seal = hex(HMAC<SHA256>.authenticationCode(for: Data("head \(parts[0]) \(parts[1])".utf8), using: key))
            guard seal == parts[2] else { return .broken(entry: count + 1, reason: "head does not match its MAC") }
            if sequence > count {
                return .broken(entry: count + 1, reason: "entries \(count + 1) to \(sequence) are missing (tail cut)")
            }
            if sequence >= 1 && sequence <= count {
                // The anchored entry must still be the one the head names.
                let anchored = lines[sequence - 1]
                guard String(decoding: anchored, as: UTF8.self).hasSuffix("\"mac\":\"\(parts[1])\"}") else {
                    return .broken(entry: sequence, reason: "entry differs from the anchored one")
                }
            }
        } else if count > 0 {
            return .broken(entry: count + 1, reason: "head is missing")
        }
        return .intact(entries: count, lastMAC: previous)
    }

    static func body(sequence: Int, event: AuditEvent, previous: String) -> String {
        let quote = DICOMJSON.quote
        func list(_ values: [String]) -> String { "[" + values.map(quote).joined(separator: ",") + "]" }
        return "{\"seq\":\(sequence),\"time\":\(quote(Formatting.timestamp(event.time))),"
            + "\"actor\":\(quote(event.actor)),\"address\":\(quote(event.address)),\"action\":\(quote(event.action)),"
            + "\"study\":\(event.studyUID.map(quote) ?? "null"),\"series\":\(list(event.seriesUIDs)),"
            + "\"instances\":\(list(event.instanceUIDs)),\"outcome\":\(quote(event.outcome)),\"prev\":\"\(previous)\"}"
    }

    static func mac(_ key: SymmetricKey, previous: String, body: String) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Data((previous + body).utf8), using: key))
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        Formatting.hex(bytes)
    }
}
