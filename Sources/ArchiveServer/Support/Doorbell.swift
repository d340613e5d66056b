import Foundation

/// Wakes idle job workers when work arrives in this process (a comparison asked here), instead of leaving it for
/// their next look at the queue. Idle workers still look every `ComparisonWorker.idle` seconds, which covers jobs
/// queued on another replica and a ring that came while nobody waited (kept as `pending` for the next wait).
final class Doorbell: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var pending = false

    /// Wakes every waiting worker (or the next one to wait).
    func ring() {
        let woken = lock.withLock {
            let woken = Array(waiting.values)
            waiting.removeAll()
            if woken.isEmpty { pending = true }
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns when rung (true) or after `seconds` (false), whichever comes first; at once when a ring is
    /// pending.
    @discardableResult
    func wait(seconds: Double) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.rung()
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    private func rung() async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = lock.withLock {
                    if pending || Task.isCancelled {
                        pending = false
                        return true
                    }
                    waiting[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = lock.withLock { waiting.removeValue(forKey: id) }
            continuation?.resume()
        }
    }
}
