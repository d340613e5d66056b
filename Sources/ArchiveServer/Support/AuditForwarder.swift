import Archive
import Foundation
import Logging
import ServiceLifecycle

/// Forwards every clinic's audit trail to a syslog collector over TLS (issue 12 §5; RFC 5425, PS3.15 A.5): it reads
/// each chain from where it stopped (the cursor kept in `DATA/audit-forward.json`, written after the collector took
/// the messages), so nothing is skipped across restarts or outages and a message may be sent twice, never lost.
/// The first start forwards the whole trail. A collector that cannot be reached is tried again after 1 s, then twice
/// as long each time up to a minute.
struct AuditForwarder: Service {
    let archives: TenantArchives
    let sender: SyslogSender
    let stateFile: URL
    let logger: Logger

    func run() async throws {
        let hostname = ProcessInfo.processInfo.hostName
        await cancelWhenGracefulShutdown {
            var cursors = load()
            var pause = 1.0
            while !Task.isCancelled {
                var forwarded = false
                var failed = false
                for tenant in archives.opened where !Task.isCancelled {
                    let cursor = cursors[tenant.tenant] ?? 0
                    guard let (lines, next) = try? await tenant.archive.audit.tail(after: cursor, limit: 200),
                        next != cursor
                    else { continue }
                    let frames = lines.compactMap(AuditEntry.init(line:)).map { entry in
                        SyslogSender.frame(
                            DICOMAuditMessage.xml(entry, source: "facet/\(tenant.tenant)"), time: entry.time,
                            hostname: hostname)
                    }
                    do {
                        if !frames.isEmpty { try await sender.send(frames) }
                        cursors[tenant.tenant] = next
                        save(cursors)
                        forwarded = true
                    } catch {
                        logger.warning("the syslog collector cannot be reached", metadata: ["retry-in": "\(pause)s"])
                        failed = true
                        break
                    }
                }
                if failed {
                    try? await Task.sleep(nanoseconds: UInt64(pause * 1e9))
                    pause = min(60, pause * 2)
                } else {
                    pause = 1
                    if !forwarded { try? await Task.sleep(nanoseconds: 500_000_000) }
                }
            }
        }
        sender.close()
    }

    func load() -> [String: Int] {
        guard let data = try? Data(contentsOf: stateFile),
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { return [:] }
        return object.compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    func save(_ cursors: [String: Int]) {
        let text =
            "{"
            + cursors.sorted { $0.key < $1.key }.map { "\(Responses.jsonString($0.key)):\($0.value)" }
            .joined(separator: ",") + "}\n"
        try? Data(text.utf8).write(to: stateFile, options: .atomic)
    }
}
