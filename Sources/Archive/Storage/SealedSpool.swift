import Crypto
import Foundation

/// A private temporary file for request bytes too large to hold in memory, encrypted with AES-256-GCM under a
/// key that exists only in this process's memory: a crash leaves ciphertext nobody can read, and start-up
/// deletes it. Chunks are `length (u32 LE) | ciphertext | tag`. A chunk's nonce and associated data are computed
/// from its position when reading (never taken from the file), so reordered chunks fail authentication; the total
/// plaintext length is checked at the end, so dropped trailing chunks are detected.
public final class SealedSpool: @unchecked Sendable {
    public let url: URL
    private let key = SymmetricKey(size: .bits256)
    private var handle: FileHandle?
    private var counter: UInt64 = 0
    private var pending = Data()
    private let chunkSize = 1 << 20
    public private(set) var size = 0

    public init(folder: URL) throws(ArchiveError) {
        url = folder.appendingPathComponent("spool-\(UUID().uuidString.lowercased())")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let file = try? FileHandle(forWritingTo: url)
        else { throw ArchiveError(.io, "temporary spool file cannot be created") }
        handle = file
    }

    deinit {
        try? handle?.close()
    }

    public func append(_ bytes: some Sequence<UInt8>) throws(ArchiveError) {
        let before = pending.count
        pending.append(contentsOf: bytes)
        size += pending.count - before
        while pending.count >= chunkSize {
            try flush(pending.prefix(chunkSize))
            pending.removeFirst(chunkSize)
        }
    }

    private func flush(_ chunk: Data) throws(ArchiveError) {
        guard let handle else { throw ArchiveError(.io, "spool is closed") }
        let index = counter
        counter += 1
        do {
            let box = try AES.GCM.seal(
                chunk, using: key, nonce: try Self.nonce(index), authenticating: Self.associatedData(index))
            let sealed = box.ciphertext + box.tag
            var record = Data(withUnsafeBytes(of: UInt32(sealed.count).littleEndian) { Array($0) })
            record.append(sealed)
            try handle.write(contentsOf: record)
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.io, "temporary spool file cannot be written")
        }
    }

    static func nonce(_ index: UInt64) throws -> AES.GCM.Nonce {
        var bytes = Data(count: 12)
        withUnsafeBytes(of: index.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        return try AES.GCM.Nonce(data: bytes)
    }

    static func associatedData(_ index: UInt64) -> Data {
        Data("facet-spool-chunk".utf8) + withUnsafeBytes(of: index.littleEndian) { Data($0) }
    }

    /// Ends writing; the bytes can then be read back with `readAll()`.
    public func close() throws(ArchiveError) {
        if !pending.isEmpty {
            try flush(pending)
            pending.removeAll()
        }
        try? handle?.close()
        handle = nil
    }

    /// Decrypts the whole spool into memory.
    public func readAll() throws(ArchiveError) -> Data {
        guard let raw = try? Data(contentsOf: url) else { throw ArchiveError(.io, "spool cannot be read") }
        var output = Data(capacity: size)
        var offset = raw.startIndex
        var index: UInt64 = 0
        while offset < raw.endIndex {
            guard raw.endIndex - offset >= 4 else { throw ArchiveError(.integrity, "spool is truncated") }
            let length = raw[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | Int($1) }
            offset += 4
            guard length >= 16, raw.endIndex - offset >= length else {
                throw ArchiveError(.integrity, "spool is truncated")
            }
            do {
                let box = try AES.GCM.SealedBox(
                    nonce: try Self.nonce(index), ciphertext: raw[offset..<offset + length - 16],
                    tag: raw[offset + length - 16..<offset + length])
                output.append(try AES.GCM.open(box, using: key, authenticating: Self.associatedData(index)))
            } catch {
                throw ArchiveError(.integrity, "spool chunk fails authentication")
            }
            offset += length
            index += 1
        }
        guard output.count == size else { throw ArchiveError(.integrity, "spool is truncated") }
        return output
    }

    public func remove() {
        try? handle?.close()
        handle = nil
        try? FileManager.default.removeItem(at: url)
    }
}
