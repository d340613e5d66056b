import Crypto
import Foundation

/// The time-independent outcome of checking a token (its signature and decoded claims), by SHA-256 of the token's
/// exact bytes, so that a token presented on every request pays for its signature once (an ECDSA P-256 check alone
/// takes longer than the 50 µs a request's token check may cost). Callers still check the times, revocation and
/// sessions on every use. Only tokens that passed every check are kept, until they expire; at most `capacity`.
final class VerifiedTokenCache<Value: Sendable>: @unchecked Sendable {
    struct Entry {
        var value: Value
        var expires: Date
        /// The key set the signature was checked with (an identity provider's keys change).
        var generation: Int
    }

    let capacity: Int
    private let lock = NSLock()
    private var entries: [SHA256Digest: Entry] = [:]

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    static func key(_ token: String) -> SHA256Digest { SHA256.hash(data: Data(token.utf8)) }

    /// The value of a token checked with key set `generation`, unless it has expired by `now`.
    func value(for key: SHA256Digest, generation: Int = 0, now: Date) -> Value? {
        lock.withLock {
            guard let entry = entries[key], entry.generation == generation, now < entry.expires else { return nil }
            return entry.value
        }
    }

    func insert(_ value: Value, for key: SHA256Digest, generation: Int = 0, expires: Date, now: Date) {
        guard capacity > 0 else { return }
        lock.withLock {
            if entries.count >= capacity {
                entries = entries.filter { now < $0.value.expires }
                // All live (a burst of new sessions): start over rather than search for the oldest.
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(value: value, expires: expires, generation: generation)
        }
    }
}
