import Foundation

/// A unit of background work (a comparison job, later a report), kept in the index so that it survives restarts.
public struct Job: Sendable, Hashable {
    public enum Status: String, Sendable {
        case queued, running, done, failed, cancelled
    }

    public var id: String
    public var tenant: String
    public var kind: String
    /// What the job works on (may name a patient: sealed at rest like every attribute).
    public var payload: Data
    public var status: Status
    public var attempts: Int
    /// 0...1, as the worker reports it.
    public var progress: Double
    /// The worker's answer (sealed at rest), and why a failed job failed (no PHI).
    public var result: Data?
    public var failure: String?
    public var created: Date

    public init(
        id: String, tenant: String, kind: String, payload: Data, status: Status, attempts: Int, progress: Double,
        result: Data?, failure: String?, created: Date
    ) {
        self.id = id
        self.tenant = tenant
        self.kind = kind
        self.payload = payload
        self.status = status
        self.attempts = attempts
        self.progress = progress
        self.result = result
        self.failure = failure
        self.created = created
    }
}

/// The queue of background work, in the index. A job is taken by exactly one worker at a time, across every
/// process sharing the index (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer). A worker holds a job for a
/// lease it renews while working; a job whose lease ran out (its process died) is taken again, up to
/// `maximumAttempts`, then it fails with the reason.
public protocol JobQueue: Sendable {
    /// Queues a job; returns its id. `subject` is what the job is about, for listing (a patient's key, never a
    /// name: it is kept in the clear).
    func enqueue(kind: String, payload: Data, subject: String?) async throws(ArchiveError) -> String
    /// Takes the oldest queued job of `kind` (or one whose lease ran out) for `worker`, for `lease` seconds.
    func claim(kind: String, worker: String, lease: TimeInterval) async throws(ArchiveError) -> Job?
    /// Renews the lease and records progress; false when the job is no longer this worker's (cancelled, or taken
    /// again after the lease ran out): the worker stops.
    func heartbeat(_ id: String, worker: String, progress: Double, lease: TimeInterval) async throws(ArchiveError)
        -> Bool
    /// Ends a job this worker holds: done with its result, or failed with a reason.
    func finish(_ id: String, worker: String, result: Data) async throws(ArchiveError)
    func fail(_ id: String, worker: String, reason: String) async throws(ArchiveError)
    /// Puts a job this worker holds back in the queue, to be taken again no earlier than `at` (a delivery that
    /// failed and is retried later); its attempts so far stay counted, and `reason` is kept as its last failure.
    func retry(_ id: String, worker: String, at: Date, reason: String) async throws(ArchiveError)
    /// Cancels a queued or running job; false when it had ended already (or does not exist).
    func cancel(_ id: String) async throws(ArchiveError) -> Bool
    func job(_ id: String) async throws(ArchiveError) -> Job?
    /// The ids of the jobs of `kind`, newest first, at most `limit`; with a `subject`, those about it and those
    /// queued before subjects were recorded (the caller checks their payload).
    func jobIDs(kind: String, subject: String?, limit: Int) async throws(ArchiveError) -> [String]
}

extension JobQueue {
    public func enqueue(kind: String, payload: Data) async throws(ArchiveError) -> String {
        try await enqueue(kind: kind, payload: payload, subject: nil)
    }

    public func jobIDs(kind: String, limit: Int) async throws(ArchiveError) -> [String] {
        try await jobIDs(kind: kind, subject: nil, limit: limit)
    }
}

/// How many times a job is started before a lease running out fails it.
public let maximumJobAttempts = 3

/// The most interrupted starts a job of `kind` gets: a webhook event counts its own delivery attempts (and gives up
/// after `Webhooks.Settings.attempts`), so an interrupted delivery never ends it.
func maximumInterruptions(_ kind: String) -> Int { kind == Webhooks.kind ? 1_000_000 : maximumJobAttempts }
