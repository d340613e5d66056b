import Crypto
import Foundation

/// The embedded blob store: files under `root/blobs/xx/yy/<id>`, each encrypted with AES-256-GCM in chunks under
/// its own data key (wrapped by the tenant key), so memory stays flat and ranges can be read. Layout of a file:
///
///     "FCTB" | version 2 | chunk size u32 | wrapped data key (60 bytes) | base nonce (12) | sealed info (56)
///     | chunk 0 ciphertext + tag | chunk 1 ... (each chunk's nonce is the base nonce XOR its index)
///
/// The sealed info holds the plaintext length and SHA-256. In version 2 the associated data of every chunk and of
/// the info binds the blob id, the owner (the SOP Instance UID the blob belongs to) and the chunk index, so a blob
/// file moved to another id, or read for another owner, fails authentication. Version-1 blobs (chunk index only)
/// stay readable. Writes go to `root/tmp`, are fsynced and renamed into place (the folder, and any folder created
/// for it, fsynced); leftovers of an interrupted write are removed by `cleanUp()` at start-up.
public struct EncryptedFileBlobStore: BlobStore {
    public let root: URL
    let keys: KeyHierarchy
    public let chunkSize: Int

    static let magic = Data("FCTB".utf8)
    static let headerSize = 4 + 1 + 4 + 60 + 12 + 56
    static let tagSize = 16
    /// The format new blobs are written in.
    static let currentVersion: UInt8 = 2

    public init(root: URL, keys: KeyHierarchy, chunkSize: Int = 1 << 20) throws(ArchiveError) {
        precondition(chunkSize >= 4096 && chunkSize <= 1 << 26, "chunk size out of range")
        self.root = root
        self.keys = keys
        self.chunkSize = chunkSize
        try createPrivateDirectory(root.appendingPathComponent("blobs"))
        try createPrivateDirectory(root.appendingPathComponent("tmp"))
    }

    /// Removes temporary files left by writes that never finished. Returns how many.
    @discardableResult
    public func cleanUp() -> Int {
        let folder = root.appendingPathComponent("tmp")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
        return names.count
    }

    func path(_ id: String) throws(ArchiveError) -> URL {
        guard id.count == 32, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ArchiveError(.notFound, "no such blob")
        }
        let a = String(id.prefix(2))
        let b = String(id.dropFirst(2).prefix(2))
        return root.appendingPathComponent("blobs").appendingPathComponent(a).appendingPathComponent(b)
            .appendingPathComponent(id)
    }

    public func allIDs() -> [String] {
        let blobs = root.appendingPathComponent("blobs")
        var ids: [String] = []
        for a in (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [] {
            let folderA = blobs.appendingPathComponent(a)
            for b in (try? FileManager.default.contentsOfDirectory(atPath: folderA.path)) ?? [] {
                let folderB = folderA.appendingPathComponent(b)
                ids += (try? FileManager.default.contentsOfDirectory(atPath: folderB.path)) ?? []
            }
        }
        return ids
    }

    public func exists(_ id: String) -> Bool {
        guard let url = try? path(id) else { return false }
        return FileManager.default.fileExists(atPath: url.path)
    }

    public func newBlobID() -> String {
        UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    public func put(_ data: Data, owner: String, id: String) throws(ArchiveError) -> BlobReference {
        try put(data, owner: owner, id: id, formatVersion: Self.currentVersion)
    }

    /// `formatVersion` 1 exists for tests that check old blobs stay readable.
    func put(_ data: Data, owner: String, id: String, formatVersion: UInt8) throws(ArchiveError) -> BlobReference {
        var offset = 0
        return try write(id: id, owner: owner, version: formatVersion) { () -> Data? in
            guard offset < data.count else { return nil }
            let end = min(data.count, offset + chunkSize)
            defer { offset = end }
            return data.subdata(in: offset..<end)
        }
    }

    public func put(contentsOf url: URL, owner: String, id: String) throws(ArchiveError) -> BlobReference {
        guard let handle = try? FileHandle(forReadingFrom: url) else { throw ArchiveError(.io, "input cannot be read") }
        defer { try? handle.close() }
        var failed = false
        let reference = try write(id: id, owner: owner, version: Self.currentVersion) { () -> Data? in
            do {
                guard let chunk = try handle.read(upToCount: chunkSize), !chunk.isEmpty else { return nil }
                return chunk
            } catch {
                failed = true
                return nil
            }
        }
        if failed {
            try? delete(reference.id)
            throw ArchiveError(.io, "input could not be read to the end")
        }
        return reference
    }

    /// Encrypts chunks from `next` into a temporary file, then places it. The info block (length, SHA-256) is
    /// written last into space reserved in the header.
    private func write(id: String, owner: String, version: UInt8, _ next: () -> Data?) throws(ArchiveError)
        -> BlobReference
    {
        let target = try path(id)
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw ArchiveError(.io, "a blob with this id exists already")
        }
        let binding = Binding(version: version, id: id, owner: owner)
        let temporary = root.appendingPathComponent("tmp").appendingPathComponent(id)
        let fd = open(temporary.path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "blob cannot be created") }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        func fail(_ message: String) -> ArchiveError {
            unlink(temporary.path)
            return ArchiveError(.io, message)
        }
        let (dataKey, wrapped) = try keys.newDataKey()
        guard wrapped.count == 60 else { throw fail("wrapped key has an unexpected size") }
        var generator = SystemRandomNumberGenerator()
        let baseNonce = Data((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var header = Self.magic
        header.append(version)
        header.append(contentsOf: withUnsafeBytes(of: UInt32(chunkSize).littleEndian) { Array($0) })
        header.append(wrapped)
        header.append(baseNonce)
        header.append(Data(count: 56))  // sealed info, filled in at the end
        guard writeAll(fd, header) else { throw fail("blob cannot be written") }

        var hasher = SHA256()
        var length = 0
        var index: UInt64 = 0
        while let chunk = next() {
            hasher.update(data: chunk)
            length += chunk.count
            guard
                let sealed = try? Self.sealChunk(
                    chunk, index: index, key: dataKey, baseNonce: baseNonce, binding: binding)
            else {
                throw fail("blob cannot be encrypted")
            }
            guard writeAll(fd, sealed) else { throw fail("blob cannot be written") }
            index += 1
        }
        let digest = Data(hasher.finalize())
        var info = Data(withUnsafeBytes(of: UInt64(length).littleEndian) { Array($0) })
        info.append(digest)
        guard let sealedInfo = try? Self.sealInfo(info, key: dataKey, baseNonce: baseNonce, binding: binding),
            sealedInfo.count == 56,
            pwriteAll(fd, sealedInfo, at: Self.headerSize - 56), fsync(fd) == 0
        else { throw fail("blob cannot be written") }
        close(fd)
        closed = true
        do {
            try createDurableDirectory(target.deletingLastPathComponent())
        } catch {
            throw fail("blob folder cannot be created")
        }
        guard rename(temporary.path, target.path) == 0 else { throw fail("blob cannot be placed") }
        syncDirectory(target.deletingLastPathComponent())
        return BlobReference(id: id, size: length, sha256: Formatting.hex(digest))
    }

    public func getVerified(_ id: String, owner: String) throws(ArchiveError) -> (data: Data, sha256: String) {
        let (handle, header) = try openBlob(id, owner: owner)
        defer { try? handle.close() }
        var hasher = SHA256()
        var plaintext = Data()
        plaintext.reserveCapacity(header.length)
        let chunks = header.chunkCount(chunkSize: header.chunkSize)
        for index in 0..<chunks {
            let chunk = try readChunk(handle, header: header, index: index)
            hasher.update(data: chunk)
            plaintext.append(chunk)
        }
        guard plaintext.count == header.length, Data(hasher.finalize()) == header.sha256 else {
            throw ArchiveError(.integrity, "blob failed its SHA-256 check and is not served")
        }
        return (plaintext, Formatting.hex(header.sha256))
    }

    public func read(_ id: String, owner: String, range: Range<Int>) throws(ArchiveError) -> Data {
        let (handle, header) = try openBlob(id, owner: owner)
        defer { try? handle.close() }
        guard range.lowerBound >= 0, range.upperBound <= header.length else {
            throw ArchiveError(.invalidRange, "range lies outside the object")
        }
        guard !range.isEmpty else { return Data() }
        let first = range.lowerBound / header.chunkSize
        let last = (range.upperBound - 1) / header.chunkSize
        var out = Data()
        for index in first...last {
            let chunk = try readChunk(handle, header: header, index: index)
            let chunkStart = index * header.chunkSize
            let from = max(range.lowerBound, chunkStart) - chunkStart
            let to = min(range.upperBound, chunkStart + chunk.count) - chunkStart
            out.append(chunk.subdata(in: from..<to))
        }
        return out
    }

    public func delete(_ id: String) throws(ArchiveError) {
        let url = try path(id)
        guard unlink(url.path) == 0 || errno == ENOENT else { throw ArchiveError(.io, "blob cannot be deleted") }
    }

    // MARK: reading

    /// What a blob's associated data binds: the format version decides whether id and owner are part of it.
    struct Binding {
        var version: UInt8
        var id: String
        var owner: String

        /// Version 2: length-prefixed id and owner, so that no two (id, owner) pairs give the same bytes.
        var context: Data {
            guard version >= 2 else { return Data() }
            var out = Data()
            for text in [id, owner] {
                let bytes = Data(text.utf8)
                out.append(contentsOf: withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { Array($0) })
                out.append(bytes)
            }
            return out
        }
    }

    struct Header {
        var binding: Binding
        var chunkSize: Int
        var key: SymmetricKey
        var baseNonce: Data
        var length: Int
        var sha256: Data

        func chunkCount(chunkSize: Int) -> Int { (length + chunkSize - 1) / chunkSize }
    }

    private func openBlob(_ id: String, owner: String) throws(ArchiveError) -> (FileHandle, Header) {
        let url = try path(id)
        guard let handle = try? FileHandle(forReadingFrom: url) else { throw ArchiveError(.notFound, "no such blob") }
        guard let raw = try? handle.read(upToCount: Self.headerSize), raw.count == Self.headerSize,
            raw.prefix(4) == Self.magic, raw[raw.startIndex + 4] == 1 || raw[raw.startIndex + 4] == 2
        else {
            try? handle.close()
            throw ArchiveError(.integrity, "blob header is damaged")
        }
        let bytes = [UInt8](raw)
        let chunkSize = Int(UInt32(bytes[5]) | UInt32(bytes[6]) << 8 | UInt32(bytes[7]) << 16 | UInt32(bytes[8]) << 24)
        let wrapped = Data(bytes[9..<69])
        let baseNonce = Data(bytes[69..<81])
        let sealedInfo = Data(bytes[81..<137])
        let binding = Binding(version: bytes[4], id: id, owner: owner)
        do throws(ArchiveError) {
            guard chunkSize >= 4096 && chunkSize <= 1 << 26 else {
                throw ArchiveError(.integrity, "blob header is damaged")
            }
            let key = try keys.unwrapDataKey(wrapped)
            guard let info = try? Self.openInfo(sealedInfo, key: key, baseNonce: baseNonce, binding: binding),
                info.count == 40
            else {
                throw ArchiveError(.integrity, "blob header failed authentication and is not served")
            }
            let length = info.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            return (
                handle,
                Header(
                    binding: binding, chunkSize: chunkSize, key: key, baseNonce: baseNonce, length: length,
                    sha256: info.suffix(32))
            )
        } catch {
            try? handle.close()
            if error.code == .key { throw ArchiveError(.integrity, "blob key failed authentication and is not served") }
            throw error
        }
    }

    private func readChunk(_ handle: FileHandle, header: Header, index: Int) throws(ArchiveError) -> Data {
        let plainSize = min(header.chunkSize, header.length - index * header.chunkSize)
        let offset = UInt64(Self.headerSize + index * (header.chunkSize + Self.tagSize))
        do {
            try handle.seek(toOffset: offset)
            guard let sealed = try handle.read(upToCount: plainSize + Self.tagSize),
                sealed.count == plainSize + Self.tagSize
            else { throw ArchiveError(.integrity, "blob is truncated and is not served") }
            return try Self.openChunk(
                sealed, index: UInt64(index), key: header.key, baseNonce: header.baseNonce, binding: header.binding)
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.integrity, "blob chunk failed authentication and is not served")
        }
    }

    // MARK: chunk crypto

    static func nonce(_ base: Data, _ index: UInt64) throws -> AES.GCM.Nonce {
        var bytes = [UInt8](base)
        for k in 0..<8 { bytes[4 + k] ^= UInt8(truncatingIfNeeded: index >> (8 * UInt64(k))) }
        return try AES.GCM.Nonce(data: bytes)
    }

    static func chunkAAD(_ index: UInt64, _ binding: Binding) -> Data {
        let label = binding.version >= 2 ? "FCTB2-chunk" : "FCTB-chunk"
        return Data(label.utf8) + binding.context + withUnsafeBytes(of: index.littleEndian) { Data($0) }
    }

    static func infoAAD(_ binding: Binding) -> Data {
        Data((binding.version >= 2 ? "FCTB2-info" : "FCTB-info").utf8) + binding.context
    }

    static func sealChunk(_ chunk: Data, index: UInt64, key: SymmetricKey, baseNonce: Data, binding: Binding) throws
        -> Data
    {
        let box = try AES.GCM.seal(
            chunk, using: key, nonce: try nonce(baseNonce, index), authenticating: chunkAAD(index, binding))
        return box.ciphertext + box.tag
    }

    static func openChunk(_ sealed: Data, index: UInt64, key: SymmetricKey, baseNonce: Data, binding: Binding) throws
        -> Data
    {
        let box = try AES.GCM.SealedBox(
            nonce: try nonce(baseNonce, index), ciphertext: sealed.prefix(sealed.count - tagSize),
            tag: sealed.suffix(tagSize))
        return try AES.GCM.open(box, using: key, authenticating: chunkAAD(index, binding))
    }

    static func sealInfo(_ info: Data, key: SymmetricKey, baseNonce: Data, binding: Binding) throws -> Data {
        let box = try AES.GCM.seal(
            info, using: key, nonce: try nonce(baseNonce, UInt64.max), authenticating: infoAAD(binding))
        return box.ciphertext + box.tag
    }

    static func openInfo(_ sealed: Data, key: SymmetricKey, baseNonce: Data, binding: Binding) throws -> Data {
        let box = try AES.GCM.SealedBox(
            nonce: try nonce(baseNonce, UInt64.max), ciphertext: sealed.prefix(sealed.count - tagSize),
            tag: sealed.suffix(tagSize))
        return try AES.GCM.open(box, using: key, authenticating: infoAAD(binding))
    }
}

func writeAll(_ fd: Int32, _ data: Data) -> Bool {
    data.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return true }
        var offset = 0
        while offset < raw.count {
            let n = Foundation.write(fd, base + offset, raw.count - offset)
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}

func pwriteAll(_ fd: Int32, _ data: Data, at position: Int) -> Bool {
    data.withUnsafeBytes { raw in
        guard let base = raw.baseAddress else { return true }
        var offset = 0
        while offset < raw.count {
            let n = pwrite(fd, base + offset, raw.count - offset, off_t(position + offset))
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
