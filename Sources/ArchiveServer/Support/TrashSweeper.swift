import Archive
import Foundation
import Logging
import ServiceLifecycle

/// Disposes of the trash of every clinic this process holds (issue 12 §4): a minute after start, then every hour,
/// each soft-deleted instance past its 30 days that neither the retention rule nor a legal hold still requires is
/// disposed of (`ArchiveService.sweepTrash`: audited, rows purged, blobs deleted). Several replicas may sweep the
/// same clinic: a purge takes rows that are still there, so a second sweep finds nothing to do.
struct TrashSweeper: Service {
    let archives: TenantArchives
    let logger: Logger
    static let firstSweep: Double = 60
    static let interval: Double = 3_600

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var pause = Self.firstSweep
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                pause = Self.interval
                for tenant in archives.opened where !Task.isCancelled && tenant.archive.hasTrash {
                    do throws(ArchiveError) {
                        let sweep = try await tenant.archive.sweepTrash(records: tenant.records, now: Date())
                        guard !sweep.disposed.isEmpty || sweep.blobsLeftForNextStart > 0 else { continue }
                        logger.notice(
                            "trash swept",
                            metadata: [
                                "tenant": "\(tenant.tenant)", "disposed": "\(sweep.disposed.count)",
                                "blobs": "\(sweep.purge.blobIDs.count)", "retained": "\(sweep.retained)",
                                "held": "\(sweep.held)", "blobsLeftForNextStart": "\(sweep.blobsLeftForNextStart)",
                            ])
                    } catch {
                        logger.error(
                            "trash sweep failed",
                            metadata: ["tenant": "\(tenant.tenant)", "reason": "\(error.message)"])
                    }
                }
            }
        }
    }
}
