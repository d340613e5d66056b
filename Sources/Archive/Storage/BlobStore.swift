import Foundation

/// What a stored blob is known by: an opaque id (never derived from content or PHI), its plaintext size and the
/// SHA-256 of its plaintext.
public struct BlobReference: Sendable, Hashable {
    public var id: String
    public var size: Int
    public var sha256: String
}

/// Where object bytes live. Every implementation encrypts at rest, verifies on read, and makes a write durable
/// before returning; a blob that fails verification is never returned.
///
/// Every blob is bound to its id and to an owner (the SOP Instance UID it belongs to): reading it under another
/// id or owner fails with `.integrity`, so blobs swapped on disk are never served for one another.
public protocol BlobStore: Sendable {
    /// A fresh opaque id, so that a write can be recorded as pending before it happens.
    func newBlobID() -> String
    /// Writes `data` under `id` (from `newBlobID()`, not used before), bound to `owner`.
    func put(_ data: Data, owner: String, id: String) throws(ArchiveError) -> BlobReference
    /// Streams a file into the store without holding it in memory.
    func put(contentsOf url: URL, owner: String, id: String) throws(ArchiveError) -> BlobReference
    /// The whole plaintext, after checking every chunk and the SHA-256, with the SHA-256 (hex) the blob's
    /// authenticated header holds.
    func getVerified(_ id: String, owner: String) throws(ArchiveError) -> (data: Data, sha256: String)
    /// A byte range of the plaintext; every chunk it touches is authenticated.
    func read(_ id: String, owner: String, range: Range<Int>) throws(ArchiveError) -> Data
    func delete(_ id: String) throws(ArchiveError)
    func exists(_ id: String) -> Bool
    /// Every blob id present, for reconciling with the index at start-up.
    func allIDs() -> [String]
}

extension BlobStore {
    public func put(_ data: Data, owner: String) throws(ArchiveError) -> BlobReference {
        try put(data, owner: owner, id: newBlobID())
    }

    public func put(contentsOf url: URL, owner: String) throws(ArchiveError) -> BlobReference {
        try put(contentsOf: url, owner: owner, id: newBlobID())
    }

    /// The whole plaintext, after checking every chunk and the SHA-256.
    public func get(_ id: String, owner: String) throws(ArchiveError) -> Data {
        try getVerified(id, owner: owner).data
    }
}
