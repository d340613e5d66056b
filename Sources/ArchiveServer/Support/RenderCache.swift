import Foundation

/// Rendered images and thumbnails, derived once and kept in memory: bounded by bytes (least recently used go
/// first), and identical requests arriving together share one render.
final class RenderCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (data: Data, used: UInt64)] = [:]
    private var inFlight: [String: Task<Data, Error>] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0
    let capacityBytes: Int

    init(capacityBytes: Int = 64 << 20) {
        self.capacityBytes = capacityBytes
    }

    /// Bytes held (for tests and metrics).
    var size: Int { lock.withLock { bytes } }

    func value(_ key: String, make: @escaping @Sendable () async throws -> Data) async throws -> Data {
        enum Found {
            case cached(Data)
            case pending(Task<Data, Error>)
            case mine(Task<Data, Error>)
        }
        let found: Found = lock.withLock {
            if let entry = entries[key] {
                clock += 1
                entries[key]?.used = clock
                return .cached(entry.data)
            }
            if let task = inFlight[key] { return .pending(task) }
            let task = Task { try await make() }
            inFlight[key] = task
            return .mine(task)
        }
        switch found {
        case .cached(let data): return data
        case .pending(let task): return try await task.value
        case .mine(let task):
            do {
                let made = try await task.value
                lock.withLock {
                    inFlight[key] = nil
                    insert(key, made)
                }
                return made
            } catch {
                lock.withLock { inFlight[key] = nil }
                throw error
            }
        }
    }

    /// Called with the lock held.
    private func insert(_ key: String, _ data: Data) {
        guard data.count <= capacityBytes / 8, entries[key] == nil else { return }
        clock += 1
        entries[key] = (data, clock)
        bytes += data.count
        while bytes > capacityBytes, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            bytes -= oldest.value.data.count
            entries[oldest.key] = nil
        }
    }
}
