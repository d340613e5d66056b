import Foundation

/// The embedded object store: files under `root/blobs/xx/yy/<key>`, written to `root/tmp`, fsynced and renamed
/// into place (the folder, and any folder created for it, fsynced). Interrupted writes leave only temporary files
/// (removed when the archive opens); quarantined objects go to `root/quarantine`. Blocking calls run on the storage pool.
public struct FileObjectStore: ObjectStore {
    public let root: URL
    let pool: BlockingPool

    public init(root: URL, pool: BlockingPool = .storage) throws(ArchiveError) {
        self.root = root
        self.pool = pool
        try createPrivateDirectory(root.appendingPathComponent("blobs"))
        try createPrivateDirectory(root.appendingPathComponent("tmp"))
        try createPrivateDirectory(root.appendingPathComponent("quarantine"))
    }

    public var scratchFolder: URL { root.appendingPathComponent("tmp") }
    var quarantineFolder: URL { root.appendingPathComponent("quarantine") }

    /// The file of a key. Keys are blob ids: 32 lower-case hex digits; anything else is not found.
    func path(_ key: String) throws(ArchiveError) -> URL {
        guard BlobReference.isValidID(key) else {
            throw ArchiveError(.notFound, "no such blob")
        }
        let a = String(key.prefix(2))
        let b = String(key.dropFirst(2).prefix(2))
        return root.appendingPathComponent("blobs").appendingPathComponent(a).appendingPathComponent(b)
            .appendingPathComponent(key)
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(ArchiveError) -> T)
        async
        throws(ArchiveError) -> T
    {
        try await pool.runTyped(body)
    }

    public func put(_ key: String, data: Data) async throws(ArchiveError) {
        let target = try path(key)
        let scratch = scratchFolder
        try await blocking { () throws(ArchiveError) in
            let temporary = scratch.appendingPathComponent("\(key).\(UUID().uuidString.prefix(8))")
            let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw ArchiveError(.io, "blob cannot be created") }
            let written = writeAll(fd, data) && fsync(fd) == 0
            close(fd)
            guard written else {
                unlink(temporary.path)
                throw ArchiveError(.io, "blob cannot be written")
            }
            try Self.place(temporary, at: target)
        }
    }

    public func put(_ key: String, file: URL) async throws(ArchiveError) {
        let target = try path(key)
        try await blocking { () throws(ArchiveError) in
            let fd = open(file.path, O_RDONLY)
            guard fd >= 0 else { throw ArchiveError(.io, "blob cannot be read back") }
            let synced = fsync(fd) == 0
            close(fd)
            guard synced else {
                unlink(file.path)
                throw ArchiveError(.io, "blob cannot be written")
            }
            try Self.place(file, at: target)
        }
    }

    /// Renames a written, fsynced file into place and makes the rename durable; an existing object is refused.
    private static func place(_ temporary: URL, at target: URL) throws(ArchiveError) {
        guard !FileManager.default.fileExists(atPath: target.path) else {
            unlink(temporary.path)
            throw ArchiveError(.io, "a blob with this id exists already")
        }
        do {
            try createDurableDirectory(target.deletingLastPathComponent())
        } catch {
            unlink(temporary.path)
            throw ArchiveError(.io, "blob folder cannot be created")
        }
        guard rename(temporary.path, target.path) == 0 else {
            unlink(temporary.path)
            throw ArchiveError(.io, "blob cannot be placed")
        }
        syncDirectory(target.deletingLastPathComponent())
    }

    public func get(_ key: String, range: Range<Int>) async throws(ArchiveError) -> Data {
        let url = try path(key)
        return try await blocking { () throws(ArchiveError) in
            let fd = open(url.path, O_RDONLY)
            guard fd >= 0 else {
                throw errno == ENOENT
                    ? ArchiveError(.notFound, "no such blob") : ArchiveError(.io, "blob cannot be read")
            }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw ArchiveError(.io, "blob cannot be read") }
            let end = min(range.upperBound, Int(info.st_size))
            guard range.lowerBound >= 0, range.lowerBound < end else { return Data() }
            var out = Data(count: end - range.lowerBound)
            let complete = out.withUnsafeMutableBytes { raw -> Bool in
                guard let base = raw.baseAddress else { return true }
                var done = 0
                while done < raw.count {
                    let n = pread(fd, base + done, raw.count - done, off_t(range.lowerBound + done))
                    if n <= 0 { return false }
                    done += n
                }
                return true
            }
            guard complete else { throw ArchiveError(.io, "blob cannot be read") }
            return out
        }
    }

    public func delete(_ key: String) async throws(ArchiveError) {
        let url = try path(key)
        try await blocking { () throws(ArchiveError) in
            guard unlink(url.path) == 0 || errno == ENOENT else { throw ArchiveError(.io, "blob cannot be deleted") }
        }
    }

    public func exists(_ key: String) async throws(ArchiveError) -> Bool {
        guard let url = try? path(key) else { return false }
        return FileManager.default.fileExists(atPath: url.path)
    }

    public func quarantine(_ key: String) async throws(ArchiveError) {
        let from = try path(key)
        let folder = quarantineFolder
        try await blocking { () throws(ArchiveError) in
            let to = folder.appendingPathComponent(key)
            guard rename(from.path, to.path) == 0 || errno == ENOENT else {
                throw ArchiveError(.io, "a blob cannot be quarantined")
            }
            // The quarantine clock starts now, not when the blob was written.
            utimes(to.path, nil)
            syncDirectory(folder)
            syncDirectory(from.deletingLastPathComponent())
        }
    }

    public func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int {
        let folder = quarantineFolder
        return try await blocking { () throws(ArchiveError) in
            var removed = 0
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
                let url = folder.appendingPathComponent(name)
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
                    let modified = attributes[.modificationDate] as? Date, modified < date
                else { continue }
                if unlink(url.path) == 0 { removed += 1 }
            }
            if removed > 0 { syncDirectory(folder) }
            return removed
        }
    }

    public func allKeys() async throws(ArchiveError) -> [String]? {
        let blobs = root.appendingPathComponent("blobs")
        return try await blocking { () throws(ArchiveError) in
            var keys: [String] = []
            for a in (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [] {
                let folderA = blobs.appendingPathComponent(a)
                for b in (try? FileManager.default.contentsOfDirectory(atPath: folderA.path)) ?? [] {
                    keys +=
                        (try? FileManager.default.contentsOfDirectory(atPath: folderA.appendingPathComponent(b).path))
                        ?? []
                }
            }
            return keys
        }
    }
}
