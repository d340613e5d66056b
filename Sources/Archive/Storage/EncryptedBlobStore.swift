import Crypto
import Foundation

/// The at-rest scheme of every blob, as a layer over any `ObjectStore` (files, S3): each blob is encrypted with
/// AES-256-GCM in chunks under its own data key (wrapped by the tenant key), so memory stays flat and ranges can be
/// read. Layout of an object:
///
///     "FCTB" | version 2 | chunk size u32 | wrapped data key (60 bytes) | base nonce (12) | sealed info (56)
///     | chunk 0 ciphertext + tag | chunk 1 ... (each chunk's nonce is the base nonce XOR its index)
///
/// The sealed info holds the plaintext length and SHA-256. In version 2 the associated data of every chunk and of
/// the info binds the blob id, the owner (the SOP Instance UID the blob belongs to) and the chunk index, so a blob
/// moved to another id, or read for another owner, fails authentication. Version-1 blobs (chunk index only) stay
/// readable.
///
/// Version 3 is a patient's blob: its data key is wrapped by the patient's own key (`PatientKeyring`), whose id sits
/// in the header before the wrapped key:
///
///     "FCTB" | version 3 | chunk size u32 | patient key id (16) | wrapped data key (60) | base nonce (12)
///     | sealed info (56) | chunks as in version 2
///
/// Destroying the patient's key (disposal) leaves every copy of the blob unreadable. Encryption and decryption run
/// on the storage pool, never on a cooperative thread.
public struct EncryptedBlobStore: BlobStore {
    public let objects: any ObjectStore
    let keys: KeyHierarchy
    public let chunkSize: Int
    let pool: BlockingPool

    static let magic = Data("FCTB".utf8)
    /// The header of versions 1 and 2; version 3 adds the patient key's id.
    static let headerSize = 4 + 1 + 4 + 60 + 12 + 56
    static func headerSize(version: UInt8) -> Int { version >= 3 ? headerSize + 16 : headerSize }
    static let tagSize = 16
    /// The format new blobs are written in.
    static let currentVersion: UInt8 = 2
    /// Chunks fetched per read from the object store.
    static let chunksPerRead = 8

    public init(objects: any ObjectStore, keys: KeyHierarchy, chunkSize: Int = 1 << 20, pool: BlockingPool = .storage) {
        precondition(chunkSize >= 4096 && chunkSize <= 1 << 26, "chunk size out of range")
        self.objects = objects
        self.keys = keys
        self.chunkSize = chunkSize
        self.pool = pool
    }

    public func newBlobID() -> String {
        UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    public func exists(_ id: String) async throws(ArchiveError) -> Bool { try await objects.exists(id) }
    public func delete(_ id: String) async throws(ArchiveError) { try await objects.delete(id) }
    public func quarantine(_ id: String) async throws(ArchiveError) { try await objects.quarantine(id) }
    public func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int {
        try await objects.expireQuarantine(before: date)
    }
    public func allIDs() async throws(ArchiveError) -> [String]? { try await objects.allKeys() }

    // MARK: writing

    public func put(_ data: Data, owner: String, id: String, patient: String?) async throws(ArchiveError)
        -> BlobReference
    {
        try await put(data, owner: owner, id: id, formatVersion: Self.currentVersion, patient: patient)
    }

    /// `formatVersion` 1 exists for tests that check old blobs stay readable; a patient's blob is version 3 when
    /// the archive has patient keys.
    func put(_ data: Data, owner: String, id: String, formatVersion: UInt8, patient: String? = nil)
        async throws(ArchiveError) -> BlobReference
    {
        try Self.checkID(id)
        let (keys, chunkSize) = (self.keys, self.chunkSize)
        let (sealed, reference) = try await pool.runTyped { () throws(ArchiveError) in
            var out = Data()
            out.reserveCapacity(Self.headerSize + 16 + data.count + (data.count / chunkSize + 1) * Self.tagSize)
            var offset = 0
            let sealer = try Sealer(
                id: id, owner: owner, version: formatVersion, chunkSize: chunkSize, keys: keys, patient: patient)
            out.append(sealer.header)
            while offset < data.count {
                let end = min(data.count, offset + chunkSize)
                out.append(try sealer.seal(data.subdata(in: offset..<end)))
                offset = end
            }
            let info = try sealer.finish()
            let end = sealer.header.count
            out.replaceSubrange((end - 56)..<end, with: info)
            return (out, sealer.reference)
        }
        try await objects.put(id, data: sealed)
        return reference
    }

    public func put(contentsOf url: URL, owner: String, id: String, patient: String?) async throws(ArchiveError)
        -> BlobReference
    {
        try Self.checkID(id)
        let (keys, chunkSize) = (self.keys, self.chunkSize)
        let scratch = objects.scratchFolder.appendingPathComponent("\(id).sealing")
        let reference = try await pool.runTyped { () throws(ArchiveError) in
            try Self.seal(url, into: scratch, id: id, owner: owner, chunkSize: chunkSize, keys: keys, patient: patient)
        }
        do {
            try await objects.put(id, file: scratch)
        } catch {
            unlink(scratch.path)
            throw error
        }
        return reference
    }

    /// Encrypts the file at `source` into a new file `target`, the info block written last into the header's space.
    private static func seal(
        _ source: URL, into target: URL, id: String, owner: String, chunkSize: Int, keys: KeyHierarchy,
        patient: String?
    ) throws(ArchiveError) -> BlobReference {
        guard let handle = try? FileHandle(forReadingFrom: source) else {
            throw ArchiveError(.io, "input cannot be read")
        }
        defer { try? handle.close() }
        let fd = open(target.path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ArchiveError(.io, "blob cannot be created") }
        var succeeded = false
        defer {
            close(fd)
            if !succeeded { unlink(target.path) }
        }
        let sealer = try Sealer(
            id: id, owner: owner, version: currentVersion, chunkSize: chunkSize, keys: keys, patient: patient)
        guard writeAll(fd, sealer.header) else { throw ArchiveError(.io, "blob cannot be written") }
        while true {
            let chunk: Data
            do {
                guard let read = try handle.read(upToCount: chunkSize), !read.isEmpty else { break }
                chunk = read
            } catch {
                throw ArchiveError(.io, "input could not be read to the end")
            }
            guard writeAll(fd, try sealer.seal(chunk)) else { throw ArchiveError(.io, "blob cannot be written") }
        }
        guard pwriteAll(fd, try sealer.finish(), at: sealer.header.count - 56) else {
            throw ArchiveError(.io, "blob cannot be written")
        }
        succeeded = true
        return sealer.reference
    }

    static func checkID(_ id: String) throws(ArchiveError) {
        guard BlobReference.isValidID(id) else {
            throw ArchiveError(.notFound, "no such blob")
        }
    }

    /// Seals one blob chunk by chunk: the header first (its info space empty), then the chunks, then the info.
    final class Sealer {
        let binding: Binding
        let key: SymmetricKey
        let baseNonce: Data
        let header: Data
        private var hasher = SHA256()
        private var length = 0
        private var index: UInt64 = 0
        private var digest = Data()

        init(id: String, owner: String, version: UInt8, chunkSize: Int, keys: KeyHierarchy, patient: String?)
            throws(ArchiveError)
        {
            // A patient's blob, where the archive has patient keys, is version 3 (its data key under the patient's).
            var patientKey: (id: Data, key: SymmetricKey)?
            if version >= 2, let patient, let ring = keys.patientKeys {
                let (id, key) = try ring.key(forPatient: patient)
                guard let idBytes = Formatting.bytes(hex: id), idBytes.count == 16 else {
                    throw ArchiveError(.key, "a patient key id has an unexpected shape")
                }
                patientKey = (idBytes, key)
            }
            let version = patientKey == nil ? version : 3
            binding = Binding(version: version, id: id, owner: owner)
            let dataKey = SymmetricKey(size: .bits256)
            let wrapped =
                if let patientKey {
                    try KeyHierarchy.wrap(
                        dataKey, with: patientKey.key, purpose: "data:\(keys.tenant):\(Formatting.hex(patientKey.id))")
                } else {
                    try KeyHierarchy.wrap(dataKey, with: keys.tenantKey, purpose: "data:\(keys.tenant)")
                }
            guard wrapped.count == 60 else { throw ArchiveError(.key, "wrapped key has an unexpected size") }
            key = dataKey
            var generator = SystemRandomNumberGenerator()
            baseNonce = Data((0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) })
            var header = EncryptedBlobStore.magic
            header.append(version)
            header.append(contentsOf: withUnsafeBytes(of: UInt32(chunkSize).littleEndian) { Array($0) })
            if let patientKey { header.append(patientKey.id) }
            header.append(wrapped)
            header.append(baseNonce)
            header.append(Data(count: 56))  // sealed info, filled in at the end
            self.header = header
        }

        func seal(_ chunk: Data) throws(ArchiveError) -> Data {
            hasher.update(data: chunk)
            length += chunk.count
            defer { index += 1 }
            guard
                let sealed = try? EncryptedBlobStore.sealChunk(
                    chunk, index: index, key: key, baseNonce: baseNonce, binding: binding)
            else { throw ArchiveError(.io, "blob cannot be encrypted") }
            return sealed
        }

        /// The sealed info (length and SHA-256) for the header's last 56 bytes.
        func finish() throws(ArchiveError) -> Data {
            digest = Data(hasher.finalize())
            var info = Data(withUnsafeBytes(of: UInt64(length).littleEndian) { Array($0) })
            info.append(digest)
            guard let sealed = try? EncryptedBlobStore.sealInfo(info, key: key, baseNonce: baseNonce, binding: binding),
                sealed.count == 56
            else { throw ArchiveError(.io, "blob cannot be encrypted") }
            return sealed
        }

        var reference: BlobReference { BlobReference(id: binding.id, size: length, sha256: Formatting.hex(digest)) }
    }

    // MARK: reading

    public func getVerified(_ id: String, owner: String) async throws(ArchiveError) -> (data: Data, sha256: String) {
        var reader = try await openReader(id, owner: owner)
        let header = reader.header
        var hasher = SHA256()
        var plaintext = Data()
        plaintext.reserveCapacity(header.length)
        var next = 0
        let chunks = header.chunkCount
        while next < chunks {
            let count = min(Self.chunksPerRead, chunks - next)
            let opened = try await reader.chunks(next..<(next + count))
            for chunk in opened {
                hasher.update(data: chunk)
                plaintext.append(chunk)
            }
            next += count
        }
        guard plaintext.count == header.length, Data(hasher.finalize()) == header.sha256 else {
            throw ArchiveError(.integrity, "blob failed its SHA-256 check and is not served")
        }
        return (plaintext, Formatting.hex(header.sha256))
    }

    public func read(_ id: String, owner: String, range: Range<Int>) async throws(ArchiveError) -> Data {
        var reader = try await openReader(id, owner: owner)
        let header = reader.header
        guard range.lowerBound >= 0, range.upperBound <= header.length else {
            throw ArchiveError(.invalidRange, "range lies outside the object")
        }
        guard !range.isEmpty else { return Data() }
        let first = range.lowerBound / header.chunkSize
        let last = (range.upperBound - 1) / header.chunkSize
        var out = Data()
        var index = first
        for chunk in try await reader.chunks(first..<(last + 1)) {
            let chunkStart = index * header.chunkSize
            let from = max(range.lowerBound, chunkStart) - chunkStart
            let to = min(range.upperBound, chunkStart + chunk.count) - chunkStart
            out.append(chunk.subdata(in: from..<to))
            index += 1
        }
        return out
    }

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

    struct Header: @unchecked Sendable {
        var binding: Binding
        var chunkSize: Int
        var key: SymmetricKey
        var baseNonce: Data
        var length: Int
        var sha256: Data

        var chunkCount: Int { (length + chunkSize - 1) / chunkSize }
        /// Where chunk `index` starts in the object.
        func offset(_ index: Int) -> Int {
            EncryptedBlobStore.headerSize(version: binding.version) + index * (chunkSize + EncryptedBlobStore.tagSize)
        }
    }

    /// Reads one blob's chunks, keeping the bytes of its first fetch (the header and, for small blobs, everything).
    struct Reader {
        let store: EncryptedBlobStore
        let header: Header
        /// Object bytes from offset 0 already fetched.
        var prefix: Data

        /// The plaintext of chunks `indices`, each authenticated, fetched in one ranged read where not held.
        mutating func chunks(_ indices: Range<Int>) async throws(ArchiveError) -> [Data] {
            guard !indices.isEmpty else { return [] }
            let header = self.header
            let start = header.offset(indices.lowerBound)
            let lastSize = min(header.chunkSize, header.length - (indices.upperBound - 1) * header.chunkSize)
            let end = header.offset(indices.upperBound - 1) + lastSize + EncryptedBlobStore.tagSize
            let bytes: Data
            if end <= prefix.count {
                bytes = prefix.subdata(in: start..<end)
            } else {
                // Only what the first fetch did not bring is fetched; past it, the first fetch is not needed again.
                let held = start < prefix.count ? prefix.subdata(in: start..<prefix.count) : Data()
                bytes = held + (try await store.objects.get(header.binding.id, range: (start + held.count)..<end))
                prefix = Data()
            }
            guard bytes.count == end - start else {
                throw ArchiveError(.integrity, "blob is truncated and is not served")
            }
            return try await store.pool.runTyped { () throws(ArchiveError) in
                var out: [Data] = []
                var position = bytes.startIndex
                for index in indices {
                    let plainSize = min(header.chunkSize, header.length - index * header.chunkSize)
                    let sealed = bytes.subdata(in: position..<(position + plainSize + EncryptedBlobStore.tagSize))
                    position += plainSize + EncryptedBlobStore.tagSize
                    guard
                        let chunk = try? EncryptedBlobStore.openChunk(
                            sealed, index: UInt64(index), key: header.key, baseNonce: header.baseNonce,
                            binding: header.binding)
                    else { throw ArchiveError(.integrity, "blob chunk failed authentication and is not served") }
                    out.append(chunk)
                }
                return out
            }
        }
    }

    /// Fetches the header (with the first chunks, in the same read) and authenticates it.
    private func openReader(_ id: String, owner: String) async throws(ArchiveError) -> Reader {
        try Self.checkID(id)
        let first = try await objects.get(id, range: 0..<(Self.headerSize + 16 + chunkSize + Self.tagSize))
        guard first.count >= Self.headerSize, first.prefix(4) == Self.magic,
            (1...3).contains(first[first.startIndex + 4])
        else { throw ArchiveError(.integrity, "blob header is damaged") }
        let version = first[first.startIndex + 4]
        guard first.count >= Self.headerSize(version: version) else {
            throw ArchiveError(.integrity, "blob header is damaged")
        }
        var bytes = [UInt8](first.prefix(Self.headerSize(version: version)))
        let chunkSize = Int(UInt32(bytes[5]) | UInt32(bytes[6]) << 8 | UInt32(bytes[7]) << 16 | UInt32(bytes[8]) << 24)
        // Version 3: the patient key's id, then the rest as in version 2.
        let patientKeyID = version >= 3 ? Formatting.hex(bytes[9..<25]) : nil
        if version >= 3 { bytes.removeSubrange(9..<25) }
        let wrapped = Data(bytes[9..<69])
        let baseNonce = Data(bytes[69..<81])
        let sealedInfo = Data(bytes[81..<137])
        let binding = Binding(version: version, id: id, owner: owner)
        guard chunkSize >= 4096 && chunkSize <= 1 << 26 else {
            throw ArchiveError(.integrity, "blob header is damaged")
        }
        let key: SymmetricKey
        do throws(ArchiveError) {
            if let patientKeyID {
                guard let patientKey = keys.patientKeys?.key(id: patientKeyID) else {
                    throw ArchiveError(
                        .integrity, "blob key is unavailable (its patient's key was destroyed) and is not served")
                }
                key = try KeyHierarchy.unwrap(wrapped, with: patientKey, purpose: "data:\(keys.tenant):\(patientKeyID)")
            } else {
                key = try keys.unwrapDataKey(wrapped)
            }
        } catch {
            if error.code == .key { throw ArchiveError(.integrity, "blob key failed authentication and is not served") }
            throw error
        }
        guard let info = try? Self.openInfo(sealedInfo, key: key, baseNonce: baseNonce, binding: binding),
            info.count == 40
        else { throw ArchiveError(.integrity, "blob header failed authentication and is not served") }
        let length = info.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = Header(
            binding: binding, chunkSize: chunkSize, key: key, baseNonce: baseNonce, length: length,
            sha256: info.suffix(32))
        return Reader(store: self, header: header, prefix: Data(first))
    }

    /// A stored object as a format-2 object under `target`'s clinic key: a patient's blob (format 3) gets its data
    /// key unwrapped by the patient's key (from `source`) and wrapped by the clinic's, and loses the key id; its
    /// nonce, sealed info and chunks are kept as they are (their associated data is the same in formats 2 and 3).
    /// Other objects are returned unchanged. For moving to a setup without patient keys (`facet migrate`).
    static func clinicKeyed(_ object: Data, from source: KeyHierarchy, to target: KeyHierarchy) throws(ArchiveError)
        -> Data
    {
        let bytes = [UInt8](object.prefix(headerSize(version: 3)))
        guard bytes.count == headerSize(version: 3), object.prefix(4) == magic, bytes[4] == 3 else { return object }
        let id = Formatting.hex(bytes[9..<25])
        guard let patientKey = source.patientKeys?.key(id: id) else {
            throw ArchiveError(.integrity, "a patient's blob cannot be moved: its patient key is missing")
        }
        let dataKey = try KeyHierarchy.unwrap(
            Data(bytes[25..<85]), with: patientKey, purpose: "data:\(source.tenant):\(id)")
        let wrapped = try KeyHierarchy.wrap(dataKey, with: target.tenantKey, purpose: "data:\(target.tenant)")
        var out = magic
        out.append(2)
        out.append(contentsOf: bytes[5..<9])
        out.append(wrapped)
        out.append(contentsOf: bytes[85...])
        out.append(object.dropFirst(headerSize(version: 3)))
        return out
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
