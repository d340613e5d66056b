import Foundation

/// Where a blob store's bytes go: a plain store of objects under keys, knowing nothing of keys or formats. The
/// at-rest scheme (`EncryptedBlobStore`) is a layer over any implementation, so a new store can never forget it.
///
/// Implementations: `FileObjectStore` (files in the data folder, the embedded default) and `S3ObjectStore` (any
/// S3-compatible object store). Every call may suspend; none blocks a cooperative thread.
public protocol ObjectStore: Sendable {
    /// Stores `data` under `key`, durably before it returns. Keys are written once.
    func put(_ key: String, data: Data) async throws(ArchiveError)
    /// Stores the file at `file` under `key`, durably before it returns, and takes the file: it is moved or
    /// uploaded and removed. For objects too large to hold in memory.
    func put(_ key: String, file: URL) async throws(ArchiveError)
    /// The bytes of `range` of the object, clipped at its end (fewer bytes, or none, past it); `.notFound` when
    /// there is no such object.
    func get(_ key: String, range: Range<Int>) async throws(ArchiveError) -> Data
    /// Removes an object; an absent one is not an error.
    func delete(_ key: String) async throws(ArchiveError)
    func exists(_ key: String) async throws(ArchiveError) -> Bool
    /// Sets an object aside (an interrupted write, never acknowledged): it is no longer under `key`, and is removed
    /// by `expireQuarantine` once it has been aside long enough.
    func quarantine(_ key: String) async throws(ArchiveError)
    /// Removes objects quarantined before `date`. Returns how many.
    func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int
    /// Every key present when listing them is cheap (local files), for reconciling with the index at start-up;
    /// nil where it is not (a bucket is never listed in full).
    func allKeys() async throws(ArchiveError) -> [String]?
    /// Where a large object is assembled before `put(_:file:)`: a private folder on the same file system as the
    /// store when it is local, so that placing the file is a rename.
    var scratchFolder: URL { get }
}
