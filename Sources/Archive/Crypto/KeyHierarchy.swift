import Crypto
import Foundation

/// The key hierarchy: a master key (key file with mode 0600, or FACET_MASTER_KEY) wraps one key per tenant; each
/// tenant key wraps the per-object data keys kept in the blobs' headers. Keys are 256-bit AES-GCM keys; wrapping is
/// AES-GCM with the wrapped key's purpose as authenticated data.
public struct KeyHierarchy: Sendable {
    public let tenant: String
    // Raw bytes (SymmetricKey is not Sendable); keys are rebuilt where they are used.
    private let tenantKeyBytes: Data
    private let masterKeyBytes: Data

    var tenantKey: SymmetricKey { SymmetricKey(data: tenantKeyBytes) }
    var masterKey: SymmetricKey { SymmetricKey(data: masterKeyBytes) }

    /// `root` is what the server-wide keys are derived from: the master key the archive was made with, kept (wrapped
    /// by the current master key in `root.key`) once `facet keys rotate --master` has replaced it; nil: the master.
    init(tenant: String, tenantKey: SymmetricKey, masterKey: SymmetricKey, root: SymmetricKey? = nil) {
        self.tenant = tenant
        self.tenantKeyBytes = tenantKey.withUnsafeBytes { Data($0) }
        self.masterKeyBytes = masterKey.withUnsafeBytes { Data($0) }
        let root = root ?? masterKey
        self.rootKeyBytes = root.withUnsafeBytes { Data($0) }
        // Derived once: every audit event and every study of a care-team search hashes a patient with it.
        self.patientKeyBytes = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: root, info: Data("facet patient key v1".utf8), outputByteCount: 32
        ).withUnsafeBytes { Data($0) }
    }

    private let rootKeyBytes: Data

    private let patientKeyBytes: Data
    /// The patients' own keys (crypto-shredding): attached by `open` for an archive whose keys are in a key
    /// directory; nil where keys come from a shared database (PostgreSQL), whose rows and blobs stay under the tenant
    /// key.
    public internal(set) var patientKeys: PatientKeyring?
    /// The key of `PatientKey` (HKDF of the master key, "facet patient key v1").
    var patientHashKey: SymmetricKey { SymmetricKey(data: patientKeyBytes) }

    /// Loads the master key and the tenant's key from `keyDirectory`, creating them on first use. `created`
    /// reports a newly generated master key so that the caller can warn that it must be backed up.
    public static func open(
        keyDirectory: URL, tenant: String = "default",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ArchiveError) -> (keys: KeyHierarchy, createdMasterKey: Bool) {
        try checkTenant(tenant)
        let (master, created) = try masterKey(keyDirectory: keyDirectory, environment: environment)
        let root = try rootKey(keyDirectory: keyDirectory, master: master)
        let tenantFile = keyDirectory.appendingPathComponent("tenant-\(tenant).key")
        let tenantKey: SymmetricKey
        if FileManager.default.fileExists(atPath: tenantFile.path) {
            let sealed = try readPrivateFile(tenantFile, expectedLength: nil)
            tenantKey = try unwrap(sealed, with: master, purpose: "tenant:\(tenant)")
        } else {
            tenantKey = SymmetricKey(size: .bits256)
            try writePrivateFile(tenantFile, try wrap(tenantKey, with: master, purpose: "tenant:\(tenant)"))
        }
        var keys = KeyHierarchy(tenant: tenant, tenantKey: tenantKey, masterKey: master, root: root)
        keys.patientKeys = try PatientKeyring(
            keyDirectory: keyDirectory, tenant: tenant,
            tenantKey: try wrappingKey(keyDirectory: keyDirectory, tenant: tenant, master: master) ?? tenantKey)
        return (keys, created)
    }

    /// The root of the server-wide derived keys: `root.key` unwrapped by the master key, or nil (the master itself).
    static func rootKey(keyDirectory: URL, master: SymmetricKey) throws(ArchiveError) -> SymmetricKey? {
        let file = keyDirectory.appendingPathComponent(KeyRotation.rootFile)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        return try unwrap(
            try readPrivateFile(file, expectedLength: nil), with: master, purpose: KeyRotation.rootPurpose)
    }

    /// The tenant's current key-encryption key for its patient keys (`tenant-<t>.wrap.key`, made by a tenant key
    /// rotation), nil before the first rotation (the tenant key itself wraps them).
    static func wrappingKey(keyDirectory: URL, tenant: String, master: SymmetricKey) throws(ArchiveError)
        -> SymmetricKey?
    {
        let file = keyDirectory.appendingPathComponent(KeyRotation.wrapFile(tenant))
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        return try unwrap(
            try readPrivateFile(file, expectedLength: nil), with: master, purpose: KeyRotation.wrapPurpose(tenant))
    }

    static func checkTenant(_ tenant: String) throws(ArchiveError) {
        guard tenant.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }), !tenant.isEmpty, tenant.count <= 64 else {
            throw ArchiveError(.key, "tenant names are letters, digits and '-'")
        }
    }

    /// The master key: FACET_MASTER_KEY, or the file FACET_MASTER_KEY_FILE names (the `master-key-file` setting),
    /// or `keyDirectory/master.key`; a file is generated on first use (`created`).
    static func masterKey(keyDirectory: URL, environment: [String: String]) throws(ArchiveError)
        -> (key: SymmetricKey, created: Bool)
    {
        try createPrivateDirectory(keyDirectory)
        // A rotation interrupted after its commit point is finished here; one interrupted before it is discarded.
        try KeyRotation.recover(keyDirectory: keyDirectory, environment: environment)
        var created = false
        let master: SymmetricKey
        if let encoded = environment["FACET_MASTER_KEY"] {
            guard let bytes = Data(base64Encoded: encoded), bytes.count == 32 else {
                throw ArchiveError(.key, "FACET_MASTER_KEY must be 32 bytes, base64-encoded")
            }
            master = SymmetricKey(data: bytes)
        } else {
            let file =
                MasterKeyLocation.file(environment: environment) ?? keyDirectory.appendingPathComponent("master.key")
            if FileManager.default.fileExists(atPath: file.path) {
                master = SymmetricKey(data: try readPrivateFile(file, expectedLength: 32))
            } else {
                // Keys wrapped by a master key exist: that key is missing (another location, media not mounted), and
                // a new one would open none of them.
                let names = (try? FileManager.default.contentsOfDirectory(atPath: keyDirectory.path)) ?? []
                guard !names.contains(where: { $0.hasPrefix("tenant-") && $0.hasSuffix(".key") }) else {
                    throw ArchiveError(
                        .key,
                        "the master key is missing (\(file.lastPathComponent)) while keys wrapped by it exist: "
                            + "set master-key-file / FACET_MASTER_KEY_FILE or restore it from the key backup")
                }
                master = SymmetricKey(size: .bits256)
                try writePrivateFile(file, master.withUnsafeBytes { Data($0) })
                created = true
            }
        }
        return (master, created)
    }

    /// Opens a tenant's key kept elsewhere (the shared index), wrapped by the master key.
    static func opening(tenant: String, wrapped: Data, master: SymmetricKey, root: SymmetricKey? = nil)
        throws(ArchiveError) -> KeyHierarchy
    {
        KeyHierarchy(
            tenant: tenant, tenantKey: try unwrap(wrapped, with: master, purpose: "tenant:\(tenant)"),
            masterKey: master,
            root: root)
    }

    /// A new tenant key, wrapped by the master key, and the local file's wrapped key if there is one.
    static func tenantKeyMaterial(keyDirectory: URL, tenant: String, master: SymmetricKey) throws(ArchiveError)
        -> (local: Data?, fresh: Data)
    {
        let tenantFile = keyDirectory.appendingPathComponent("tenant-\(tenant).key")
        let local =
            FileManager.default.fileExists(atPath: tenantFile.path)
            ? try readPrivateFile(tenantFile, expectedLength: nil) : nil
        return (local, try wrap(SymmetricKey(size: .bits256), with: master, purpose: "tenant:\(tenant)"))
    }

    /// Whether two hierarchies hold the same tenant key (in constant time).
    func hasSameTenantKey(as other: KeyHierarchy) -> Bool { ConstantTime.equal(tenantKeyBytes, other.tenantKeyBytes) }

    /// A fresh data key for one object, and its wrapped form to store beside the object.
    func newDataKey() throws(ArchiveError) -> (key: SymmetricKey, wrapped: Data) {
        let key = SymmetricKey(size: .bits256)
        return (key, try Self.wrap(key, with: tenantKey, purpose: "data:\(tenant)"))
    }

    func unwrapDataKey(_ wrapped: Data) throws(ArchiveError) -> SymmetricKey {
        try Self.unwrap(wrapped, with: tenantKey, purpose: "data:\(tenant)")
    }

    /// A key of this tenant's own for one purpose (HKDF-SHA256 of the tenant key, the tenant named in the info): what
    /// seals a clinic's index rows, keys its blind indexes and chains its audit log, so that no two clinics share a
    /// key and a clinic's key alone unlocks its records. The `default` tenant keeps the master-derived keys it has
    /// always had (`derivedKey`), so archives made before clinics were partitioned stay readable.
    public func tenantDerivedKey(_ purpose: String) -> SymmetricKey {
        guard tenant != "default" else { return derivedKey(purpose) }
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: tenantKey, info: Data("\(purpose)\u{0}tenant:\(tenant)".utf8), outputByteCount: 32)
    }

    /// A key derived from the master key for one purpose (HKDF-SHA256): the server-wide ones (accounts).
    public func derivedKey(_ purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: rootKeyBytes), info: Data(purpose.utf8), outputByteCount: 32)
    }

    static func wrap(_ key: SymmetricKey, with wrapping: SymmetricKey, purpose: String) throws(ArchiveError) -> Data {
        do {
            let sealed = try AES.GCM.seal(
                key.withUnsafeBytes { Data($0) }, using: wrapping, authenticating: Data(purpose.utf8))
            guard let combined = sealed.combined else { throw ArchiveError(.key, "key could not be wrapped") }
            return combined
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(.key, "key could not be wrapped")
        }
    }

    static func unwrap(_ data: Data, with wrapping: SymmetricKey, purpose: String) throws(ArchiveError) -> SymmetricKey
    {
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            let bytes = try AES.GCM.open(box, using: wrapping, authenticating: Data(purpose.utf8))
            guard bytes.count == 32 else { throw ArchiveError(.key, "wrapped key has the wrong length") }
            return SymmetricKey(data: bytes)
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw ArchiveError(
                .key, "a wrapped key does not open with its wrapping key (wrong master key, or tampered)")
        }
    }
}

/// Creates a directory readable by the owner only.
func createPrivateDirectory(_ url: URL) throws(ArchiveError) {
    do {
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    } catch {
        throw ArchiveError(.io, "directory cannot be created")
    }
}

/// Like `createPrivateDirectory`, and every folder it creates is fsynced into its parent right after `mkdir`, so a
/// file renamed into it (and fsynced there) is still reachable after a crash.
func createDurableDirectory(_ url: URL) throws(ArchiveError) {
    var missing: [URL] = []
    var cursor = url.standardizedFileURL
    while !FileManager.default.fileExists(atPath: cursor.path) {
        missing.append(cursor)
        let parent = cursor.deletingLastPathComponent()
        guard parent.path != cursor.path else { break }
        cursor = parent
    }
    for folder in missing.reversed() {
        // A folder made meanwhile by another writer is synced again: its maker may not have got there yet.
        guard mkdir(folder.path, 0o700) == 0 || errno == EEXIST else {
            throw ArchiveError(.io, "directory cannot be created")
        }
        syncDirectory(folder.deletingLastPathComponent())
    }
}

/// Writes a small secret file with mode 0600, durably (temporary file, fsync, rename).
func writePrivateFile(_ url: URL, _ data: Data) throws(ArchiveError) {
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(UUID().uuidString).tmp")
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
    guard fd >= 0 else { throw ArchiveError(.io, "key file cannot be created") }
    let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd)
    close(fd)
    guard written == data.count, synced == 0, rename(temporary.path, url.path) == 0 else {
        unlink(temporary.path)
        throw ArchiveError(.io, "key file cannot be written")
    }
    syncDirectory(url.deletingLastPathComponent())
}

/// Reads a secret file, refusing one that others can read.
func readPrivateFile(_ url: URL, expectedLength: Int?) throws(ArchiveError) -> Data {
    var info = stat()
    guard stat(url.path, &info) == 0 else { throw ArchiveError(.io, "key file cannot be read") }
    guard info.st_mode & 0o077 == 0 else {
        throw ArchiveError(.key, "key file is readable by others; chmod 600 it")
    }
    guard let data = FileManager.default.contents(atPath: url.path) else {
        throw ArchiveError(.io, "key file cannot be read")
    }
    if let expectedLength, data.count != expectedLength {
        throw ArchiveError(.key, "key file has the wrong length")
    }
    return data
}

func syncDirectory(_ url: URL) {
    let fd = open(url.path, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
}

/// Where the master key is: the base64 value of `FACET_MASTER_KEY`, the file `FACET_MASTER_KEY_FILE` names (the
/// `master-key-file` setting: outside the data folder, on other media), or `DATA/keys/master.key` by default.
public enum MasterKeyLocation {
    /// The file `FACET_MASTER_KEY_FILE` names, nil when unset.
    public static func file(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        environment["FACET_MASTER_KEY_FILE"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
    }

    /// One sentence for the start-up log: where the key is, and what backups must not carry.
    public static func describe(
        dataDirectory: URL, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if environment["FACET_MASTER_KEY"] != nil {
            return "master key: from FACET_MASTER_KEY (not on disk); data backups (facet backup) carry no keys"
        }
        if let file = file(environment: environment) {
            let inside = file.standardizedFileURL.path.hasPrefix(dataDirectory.standardizedFileURL.path + "/")
            return "master key: \(file.path) (master-key-file)"
                + (inside
                    ? "; it is inside the data folder: move it to other media, backups of the folder must not carry it"
                    : "; data backups (facet backup) carry no keys; back the keys up apart (facet keys backup)")
        }
        return "master key: \(dataDirectory.appendingPathComponent("keys/master.key").path); backups of the data "
            + "folder must not carry DATA/keys (facet backup leaves it out; facet keys backup seals it apart), or set "
            + "master-key-file to keep the key on other media"
    }
}
