import Archive
import Foundation
import Logging
import ServiceLifecycle

/// Runs the comparison jobs of every clinic this process holds, one per core at most (`Comparisons.concurrency`
/// slots, each taking one job at a time from any clinic's queue). A job is held by a lease renewed every two
/// seconds with its progress; a job cancelled meanwhile (or taken again after its lease ran out) is dropped when
/// the renewal says so. A process that stops (or dies) mid-job leaves the lease to run out: the job is taken again,
/// here after a restart or by another replica, up to `maximumJobAttempts` times.
struct ComparisonWorker: Service {
    let archives: TenantArchives
    let logger: Logger
    let slots: Int
    /// How long a job is held without a renewal.
    static let lease: TimeInterval = 30
    /// How often an idle slot looks for work.
    static let idle: Double = 1

    let doorbell: Doorbell
    /// Where `comparison.done` goes (nil: no webhooks), and the bell of their sender.
    let webhooks: Webhooks.Settings?
    let webhookBell: Doorbell?

    init(
        archives: TenantArchives, logger: Logger, slots: Int = Comparisons.concurrency, doorbell: Doorbell = Doorbell(),
        webhooks: Webhooks.Settings? = nil, webhookBell: Doorbell? = nil
    ) {
        self.webhooks = webhooks
        self.webhookBell = webhookBell
        self.archives = archives
        self.logger = logger
        self.slots = slots
        self.doorbell = doorbell
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for slot in 0..<slots {
                    group.addTask { await work(slot: slot) }
                }
            }
        }
    }

    private func work(slot: Int) async {
        let worker = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(slot)-\(UUID().uuidString.prefix(8))"
        while !Task.isCancelled {
            var worked = false
            for tenant in archives.opened {
                guard !Task.isCancelled, let comparisons = tenant.comparisons else { continue }
                guard
                    let job = try? await comparisons.queue.claim(
                        kind: Comparisons.kind, worker: worker, lease: Self.lease)
                else { continue }
                worked = true
                await execute(job, comparisons, worker: worker)
            }
            if !worked { await doorbell.wait(seconds: Self.idle) }
        }
    }

    private func execute(_ job: Job, _ comparisons: Comparisons, worker: String) async {
        let progress = ProgressBox()
        // The lease is renewed with the progress while the measurement runs; a renewal refused means the job is
        // no longer this worker's (cancelled): its answer is then dropped.
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 2_000_000_000)
                guard !Task.isCancelled else { return }
                if (try? await comparisons.queue.heartbeat(
                    job.id, worker: worker, progress: progress.value, lease: Self.lease)) == false
                {
                    progress.dropped = true
                    return
                }
            }
        }
        defer { renewal.cancel() }
        do throws(ArchiveError) {
            let asked = try ComparisonRequest(json: job.payload)
            let outcome = try await comparisons.run(
                asked, job: job.id, progress: { progress.value = $0 },
                stillMine: {
                    // Asked just before the report is stored: a cancelled job stores nothing.
                    let mine = try? await comparisons.queue.heartbeat(
                        job.id, worker: worker, progress: progress.value, lease: Self.lease)
                    if mine != true { progress.dropped = true }
                    return mine == true
                })
            renewal.cancel()
            guard !progress.dropped else { return }
            try await comparisons.queue.finish(job.id, worker: worker, result: outcome.encoded)
            if let webhooks {
                let event = Webhooks.Event(
                    name: "comparison.done", tenant: comparisons.archive.keys.tenant, patient: asked.patient,
                    instances: [asked.before, asked.after], records: ["comparison": job.id])
                try? await Webhooks.publish(event, settings: webhooks, queue: comparisons.queue)
                webhookBell?.ring()
            }
        } catch {
            renewal.cancel()
            // The reason is the archive's or MeshKit's own message: no PHI.
            logger.warning("a comparison failed", metadata: ["job": "\(job.id)", "reason": "\(error.message)"])
            guard !progress.dropped, error.code != .conflict else { return }
            if error.code == .unavailable || error.code == .busy {
                // Storage away: the lease runs out and the job is taken again later.
                return
            }
            try? await comparisons.queue.fail(job.id, worker: worker, reason: error.message)
        }
    }
}

/// The progress a running measurement reports, read by the lease renewal.
private final class ProgressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var progressValue = 0.0
    private var droppedValue = false

    var value: Double {
        get { lock.withLock { progressValue } }
        set { lock.withLock { progressValue = newValue } }
    }

    var dropped: Bool {
        get { lock.withLock { droppedValue } }
        set { lock.withLock { droppedValue = newValue } }
    }
}
