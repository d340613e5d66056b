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
public protocol BlobStore: Sendable {
    func put(_ data: Data) throws(ArchiveError) -> BlobReference
    /// Streams a file into the store without holding it in memory.
    func put(contentsOf url: URL) throws(ArchiveError) -> BlobReference
    /// The whole plaintext, after checking every chunk and the SHA-256.
    func get(_ id: String) throws(ArchiveError) -> Data
    /// A byte range of the plaintext; every chunk it touches is authenticated.
    func read(_ id: String, range: Range<Int>) throws(ArchiveError) -> Data
    func delete(_ id: String) throws(ArchiveError)
    func exists(_ id: String) -> Bool
    /// Every blob id present, for reconciling with the index at start-up.
    func allIDs() -> [String]
}
