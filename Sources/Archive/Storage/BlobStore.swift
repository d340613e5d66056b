import Foundation

/// What a stored blob is known by: an opaque id (never derived from content or PHI), its plaintext size and the
/// SHA-256 of its plaintext.
public struct BlobReference: Sendable, Hashable {
    public var id: String
    public var size: Int
    public var sha256: String

    public init(id: String, size: Int, sha256: String) {
        self.id = id
        self.size = size
        self.sha256 = sha256
    }
}

extension BlobReference {
    /// Whether `id` has the shape of a blob id (32 lower-case hex digits, as `newBlobID()` makes): the one check
    /// every store applies before an id reaches a path or an object key.
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// Where object bytes live. Every implementation encrypts at rest, verifies on read, and makes a write durable
/// before returning; a blob that fails verification is never returned. `EncryptedBlobStore` is the one
/// implementation, over any `ObjectStore`.
///
/// Every blob is bound to its id and to an owner (the SOP Instance UID it belongs to): reading it under another
/// id or owner fails with `.integrity`, so blobs swapped in storage are never served for one another.
public protocol BlobStore: Sendable {
    /// A fresh opaque id, so that a write can be recorded as pending before it happens.
    func newBlobID() -> String
    /// Writes `data` under `id` (from `newBlobID()`, not used before), bound to `owner`; its data key is wrapped by
    /// `patient`'s key (a patient's keyed hash) where the archive has patient keys, so that destroying that key
    /// makes the blob unreadable.
    func put(_ data: Data, owner: String, id: String, patient: String?) async throws(ArchiveError) -> BlobReference
    /// Streams a file into the store without holding it in memory.
    func put(contentsOf url: URL, owner: String, id: String, patient: String?) async throws(ArchiveError)
        -> BlobReference
    /// The whole plaintext, after checking every chunk and the SHA-256, with the SHA-256 (hex) the blob's
    /// authenticated header holds.
    func getVerified(_ id: String, owner: String) async throws(ArchiveError) -> (data: Data, sha256: String)
    /// A byte range of the plaintext; every chunk it touches is authenticated.
    func read(_ id: String, owner: String, range: Range<Int>) async throws(ArchiveError) -> Data
    func delete(_ id: String) async throws(ArchiveError)
    func exists(_ id: String) async throws(ArchiveError) -> Bool
    /// Sets the blob of an interrupted store aside (removed by `expireQuarantine` later).
    func quarantine(_ id: String) async throws(ArchiveError)
    /// Removes blobs quarantined before `date`. Returns how many.
    func expireQuarantine(before date: Date) async throws(ArchiveError) -> Int
    /// Every blob id present where listing is cheap (local files); nil for a store never listed in full.
    func allIDs() async throws(ArchiveError) -> [String]?
}

extension BlobStore {
    public func put(_ data: Data, owner: String, patient: String? = nil) async throws(ArchiveError) -> BlobReference {
        try await put(data, owner: owner, id: newBlobID(), patient: patient)
    }

    public func put(contentsOf url: URL, owner: String, patient: String? = nil) async throws(ArchiveError)
        -> BlobReference
    {
        try await put(contentsOf: url, owner: owner, id: newBlobID(), patient: patient)
    }

    /// A blob of no patient (under the tenant's key).
    public func put(_ data: Data, owner: String, id: String) async throws(ArchiveError) -> BlobReference {
        try await put(data, owner: owner, id: id, patient: nil)
    }

    /// The whole plaintext, after checking every chunk and the SHA-256.
    public func get(_ id: String, owner: String) async throws(ArchiveError) -> Data {
        try await getVerified(id, owner: owner).data
    }
}
