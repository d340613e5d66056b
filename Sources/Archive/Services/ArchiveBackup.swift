import Foundation
import GRDB

/// `facet backup`: a copy of a data folder that holds no keys (issue 12 §4). Keys are backed up apart, so a data
/// backup made before a disposal cannot bring the disposed patient back: their rows and blobs in it are sealed under
/// a key that no longer exists.
///
/// It may run while a server runs. Every index (`index.sqlite`, the root's and each clinic's under `tenants/`) is
/// copied first as a consistent snapshot (SQLite's `VACUUM INTO`); then the blobs that snapshot references or
/// records as pending (a blob stored after the snapshot would be unknown to the copied index, and a start from the
/// backup would refuse it), then the rest (audit logs, forwarding cursor). Left out: the key directory, the lock,
/// spool (`tmp/`) and quarantined blobs. Blobs in an object store (S3) are not in the data folder and are not
/// copied: back the bucket up with its own versioning.
public enum ArchiveBackup {
    public struct Report: Sendable, Codable {
        public var indexes = 0
        public var blobs = 0
        public var otherFiles = 0
        public var bytes = 0
        /// Blobs the copied index references that were not in the folder (in an object store, or missing).
        public var blobsNotInFolder = 0
    }

    /// Copies `dataDirectory` into `destination` (which must not exist yet), leaving out `keyDirectory`.
    public static func make(dataDirectory: URL, keyDirectory: URL, destination: URL) throws(ArchiveError) -> Report {
        let source = dataDirectory.standardizedFileURL.resolvingSymlinksInPath()
        let target = destination.standardizedFileURL
        let keys = keyDirectory.standardizedFileURL.resolvingSymlinksInPath()
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw ArchiveError(.invalidRequest, "the backup folder exists already; name a new one")
        }
        let parent = target.deletingLastPathComponent().resolvingSymlinksInPath()
        guard !(parent.path + "/").hasPrefix(source.path + "/") else {
            throw ArchiveError(.invalidRequest, "the backup folder must be outside the data folder")
        }
        guard FileManager.default.fileExists(atPath: source.appendingPathComponent("index.sqlite").path) else {
            throw ArchiveError(.notFound, "no index.sqlite in the data folder: not a Facet data folder")
        }
        try createPrivateDirectory(target)
        var report = Report()
        try copyFolder(source, into: target, skipping: keys, report: &report)
        let manifest: [String: Any] = [
            "made": Formatting.timestamp(Date()), "keys": "not included (back them up apart: facet keys backup)",
            "indexes": report.indexes, "blobs": report.blobs, "otherFiles": report.otherFiles,
        ]
        if let data = try? JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys, .prettyPrinted]) {
            try writePrivateFile(target.appendingPathComponent("backup.json"), data)
        }
        syncDirectory(target)
        return report
    }

    /// One data folder (the root, or a clinic's under `tenants/`): its index, its blobs, the rest, then sub-folders.
    private static func copyFolder(_ source: URL, into target: URL, skipping keys: URL, report: inout Report)
        throws(ArchiveError)
    {
        let index = source.appendingPathComponent("index.sqlite")
        var wanted: Set<String>? = nil
        if FileManager.default.fileExists(atPath: index.path) {
            let copy = target.appendingPathComponent("index.sqlite")
            try snapshot(index, to: copy)
            report.indexes += 1
            wanted = try blobIDs(in: copy)
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? []).sorted()
        if let wanted {
            for id in wanted.sorted() {
                let from = source.appendingPathComponent("blobs").appendingPathComponent(String(id.prefix(2)))
                    .appendingPathComponent(String(id.dropFirst(2).prefix(2))).appendingPathComponent(id)
                guard FileManager.default.fileExists(atPath: from.path) else {
                    report.blobsNotInFolder += 1
                    continue
                }
                let to = target.appendingPathComponent("blobs").appendingPathComponent(String(id.prefix(2)))
                    .appendingPathComponent(String(id.dropFirst(2).prefix(2))).appendingPathComponent(id)
                report.bytes += try copyFile(from, to: to)
                report.blobs += 1
            }
        }
        for name in names {
            let from = source.appendingPathComponent(name)
            if from.resolvingSymlinksInPath().path == keys.path { continue }
            if ["lock", "tmp", "quarantine", "blobs", "index.sqlite", "index.sqlite-wal", "index.sqlite-shm"].contains(
                name)
            {
                continue
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: from.path, isDirectory: &isFolder) else { continue }
            let to = target.appendingPathComponent(name)
            if isFolder.boolValue {
                try createPrivateDirectory(to)
                if name == "tenants" {
                    for clinic in ((try? FileManager.default.contentsOfDirectory(atPath: from.path)) ?? []).sorted() {
                        let folder = to.appendingPathComponent(clinic)
                        try createPrivateDirectory(folder)
                        try copyFolder(
                            from.appendingPathComponent(clinic), into: folder, skipping: keys, report: &report)
                    }
                } else {
                    try copyTree(from, into: to, report: &report)
                }
            } else {
                report.bytes += try copyFile(from, to: to)
                report.otherFiles += 1
            }
        }
        syncDirectory(target)
    }

    /// A folder of plain files (the audit log), copied as it is.
    private static func copyTree(_ source: URL, into target: URL, report: inout Report) throws(ArchiveError) {
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: source.path)) ?? []).sorted() {
            let from = source.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: from.path, isDirectory: &isFolder) else { continue }
            if isFolder.boolValue {
                try createPrivateDirectory(target.appendingPathComponent(name))
                try copyTree(from, into: target.appendingPathComponent(name), report: &report)
            } else {
                report.bytes += try copyFile(from, to: target.appendingPathComponent(name))
                report.otherFiles += 1
            }
        }
    }

    /// A consistent copy of a live SQLite database (`VACUUM INTO`), mode 0600.
    static func snapshot(_ database: URL, to copy: URL) throws(ArchiveError) {
        do {
            // Not read-only: a WAL database without its -shm (no server running) opens only read-write.
            var configuration = Configuration()
            configuration.busyMode = .timeout(30)
            let queue = try DatabaseQueue(path: database.path, configuration: configuration)
            try queue.inDatabase { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copy.path]) }
            try queue.close()
        } catch {
            throw ArchiveError(.io, "the index could not be copied (\(database.lastPathComponent))")
        }
        chmod(copy.path, 0o600)
        let fd = open(copy.path, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Every blob a (copied) index references or records as pending.
    static func blobIDs(in database: URL) throws(ArchiveError) -> Set<String> {
        do {
            var configuration = Configuration()
            configuration.readonly = true
            let queue = try DatabaseQueue(path: database.path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                Set(
                    try String.fetchAll(
                        db, sql: SQLiteStudyIndex.referencedBlobsSQL + " UNION SELECT blob_id FROM pending_blobs"
                    ).filter(BlobReference.isValidID))
            }
        } catch {
            throw ArchiveError(.io, "the copied index cannot be read")
        }
    }

    /// Copies one file durably (mode 0600), making its folders. Returns its size.
    static func copyFile(_ from: URL, to: URL) throws(ArchiveError) -> Int {
        try createDurableDirectory(to.deletingLastPathComponent())
        let input = open(from.path, O_RDONLY)
        guard input >= 0 else { throw ArchiveError(.io, "a file of the data folder cannot be read") }
        defer { close(input) }
        let output = open(to.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard output >= 0 else { throw ArchiveError(.io, "a backup file cannot be created") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw ArchiveError(.io, "a file of the data folder cannot be read") }
            if n == 0 { break }
            guard writeAll(output, Data(buffer[0..<n])) else {
                throw ArchiveError(.io, "a backup file cannot be written")
            }
            total += n
        }
        guard fsync(output) == 0 else { throw ArchiveError(.io, "a backup file cannot be written") }
        return total
    }
}
