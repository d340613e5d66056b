import Foundation

/// A bounded pool of threads for blocking work (DCMTK, crypto, fsync), apart from Swift's cooperative pool, so
/// that health checks and searches answer while renders and stores queue. At most `queueLimit` jobs wait for a
/// thread; beyond that `run` throws `BlockingPool.Busy` at once (the server answers 503 with `Retry-After`).
public final class BlockingPool: @unchecked Sendable {
    /// The queue is full.
    public struct Busy: Error {
        public init() {}
    }

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private let queueLimit: Int

    /// How many objects retrievals may hold in memory at once (one per thread), with the pool's admission.
    public let objects: Slots

    public init(threads: Int, queueLimit: Int) {
        self.queueLimit = queueLimit
        objects = Slots(count: max(1, threads), queueLimit: queueLimit)
        for number in 0..<max(1, threads) {
            // The pool lives as long as the server; its threads hold it.
            let thread = Thread { self.work() }
            thread.name = "facet-blocking-\(number)"
            thread.start()
        }
    }

    /// The process's pool for storage work (file writes and fsyncs, encryption of blobs): apart from the request
    /// pools, never refusing (a request was admitted before it reached storage), so that no cooperative thread
    /// ever blocks on a disk.
    public static let storage = BlockingPool(threads: 4, queueLimit: Int.max)

    /// The process's pool for identity work that must not hold a cooperative thread: password hashing (scrypt),
    /// token signatures, fetches of an identity provider's keys. Its queue is bounded (256 scrypt checks at the
    /// recommended cost are about ten seconds of work on its two threads): a flood of logins is refused with 503 and
    /// Retry-After instead of queueing without end.
    public static let identity = BlockingPool(threads: 2, queueLimit: 256)

    /// Jobs waiting for a thread (for metrics and tests).
    public var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count - head
    }

    /// Throws `Busy` when the queue is full: the admission check of a request whose jobs then always queue.
    public func admit() throws {
        condition.lock()
        defer { condition.unlock() }
        guard jobs.count - head < queueLimit else { throw Busy() }
    }

    /// Runs `body` on one of the pool's threads and returns its result. `alwaysQueue` is for work that must
    /// not be refused (the audit event of a change already made).
    public func run<T: Sendable>(alwaysQueue: Bool = false, _ body: @escaping @Sendable () throws -> T) async throws
        -> T
    {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            condition.lock()
            guard alwaysQueue || jobs.count - head < queueLimit else {
                condition.unlock()
                continuation.resume(throwing: Busy())
                return
            }
            jobs.append {
                continuation.resume(with: Result { try body() })
            }
            condition.signal()
            condition.unlock()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            // The slot lets go of the job at once: a finished job must not keep what it captured (request bytes,
            // an archive) alive until the queue is compacted.
            jobs[head] = {}
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
        }
    }

    /// Runs typed-throwing work on the pool, keeping its error type: always queued, or (`alwaysQueue: false`)
    /// refused with `.busy` when the queue is full.
    public func runTyped<T: Sendable>(
        alwaysQueue: Bool = true, _ body: @escaping @Sendable () throws(ArchiveError) -> T
    ) async throws(ArchiveError) -> T {
        do {
            return try await run(alwaysQueue: alwaysQueue, body)
        } catch let error as ArchiveError {
            throw error
        } catch is Busy {
            throw ArchiveError(.busy, "the server is busy; try again shortly")
        } catch {
            throw ArchiveError(.io, "storage work could not be run")
        }
    }
}

/// A counting semaphore for async work that holds something large (an object read for a retrieval): at most
/// `count` holders at once, waiters served in order; a caller that is not admitted yet is refused (`Busy`) rather
/// than queued behind `queueLimit` others.
public final class Slots: @unchecked Sendable {
    private let lock = NSLock()
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private let queueLimit: Int

    init(count: Int, queueLimit: Int) {
        free = count
        self.queueLimit = queueLimit
    }

    /// Takes a slot, waiting for one if none is free. `admitted`: a later part of an answer under way, which waits
    /// however long the queue.
    public func acquire(admitted: Bool) async throws {
        if try take(admitted: admitted) { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // A slot freed meanwhile is taken at once; otherwise the waiter is recorded for `release`.
            let now: Bool = lock.withLock {
                if free > 0 {
                    free -= 1
                    return true
                }
                waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func take(admitted: Bool) throws -> Bool {
        try lock.withLock {
            if free > 0 {
                free -= 1
                return true
            }
            guard admitted || waiting.count < queueLimit else { throw BlockingPool.Busy() }
            return false
        }
    }

    /// Callers waiting for a slot (for metrics and tests).
    public var waiters: Int { lock.withLock { waiting.count } }

    /// Gives a slot back (to the longest waiter, if any).
    public func release() {
        let next: CheckedContinuation<Void, Never>? = lock.withLock {
            if waiting.isEmpty {
                free += 1
                return nil
            }
            return waiting.removeFirst()
        }
        next?.resume()
    }

    /// Runs `body` holding a slot.
    public func holding<T: Sendable>(admitted: Bool, _ body: () async throws -> T) async throws -> T {
        try await acquire(admitted: admitted)
        defer { release() }
        return try await body()
    }
}
