import Archive
import Foundation
import Logging
import ServiceLifecycle

/// Delivers the webhook events of every clinic this process holds (issue 12 §5), from their job queues: one at a
/// time, each attempt signed anew; a failed one goes back to the queue for `Webhooks.Settings.delay(after:)` (10 s,
/// 20 s, 40 s, ... up to an hour), and after `attempts` tries its job fails with the last reason. A process that dies
/// mid-delivery leaves the lease to run out and the event is sent again: at least once.
struct WebhookWorker: Service {
    let archives: TenantArchives
    let settings: Webhooks.Settings
    let logger: Logger
    let doorbell: Doorbell
    static let lease: TimeInterval = 60

    func run() async throws {
        let sender = WebhookSender()
        let worker = "\(ProcessInfo.processInfo.hostName)-\(getpid())-webhooks-\(UUID().uuidString.prefix(8))"
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var worked = false
                for tenant in archives.opened {
                    guard !Task.isCancelled, let queue = tenant.queue,
                        let job = try? await queue.claim(kind: Webhooks.kind, worker: worker, lease: Self.lease)
                    else { continue }
                    worked = true
                    switch await sender.send(job, settings: settings) {
                    case .delivered:
                        try? await queue.finish(job.id, worker: worker, result: Data("delivered".utf8))
                    case .failed(let reason):
                        if job.attempts >= settings.attempts {
                            logger.warning(
                                "a webhook event was given up", metadata: ["job": "\(job.id)", "reason": "\(reason)"])
                            try? await queue.fail(job.id, worker: worker, reason: reason)
                        } else {
                            let next = Date().addingTimeInterval(settings.delay(after: job.attempts))
                            try? await queue.retry(job.id, worker: worker, at: next, reason: reason)
                        }
                    }
                }
                if !worked { await doorbell.wait(seconds: 1) }
            }
        }
        await sender.shutdown()
    }
}
