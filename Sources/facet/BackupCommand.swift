import Archive
import ArgumentParser
import Foundation

/// `facet backup --data-dir DIR --out NEW_DIR`: a data backup without keys (they are backed up apart with
/// `facet keys backup`), safe while a server runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the data folder (indexes, blobs, audit logs) without its keys, while the server runs.",
        discussion: """
            The copy holds no key: back the keys up apart (facet keys backup), so that a patient disposed of \
            later stays unreadable in this copy. Blobs in an S3 bucket are not copied (use the bucket's versioning).
            """)

    @Option(name: .customLong("data-dir"), help: "The archive's data folder.")
    var dataDirectory: String = "./facet-data"

    @Option(name: .customLong("out"), help: "A new folder for the backup (outside the data folder).")
    var output: String

    func run() throws {
        let data = URL(fileURLWithPath: dataDirectory)
        do {
            let report = try ArchiveBackup.make(
                dataDirectory: data, keyDirectory: data.appendingPathComponent("keys"),
                destination: URL(fileURLWithPath: output))
            var line =
                "backup made: \(report.indexes) index\(report.indexes == 1 ? "" : "es"), \(report.blobs) blobs, "
                + "\(report.otherFiles) other files, \(report.bytes) bytes; no keys in it"
            if report.blobsNotInFolder > 0 {
                line +=
                    "; \(report.blobsNotInFolder) blobs are not in the data folder (an object store) and were not copied"
            }
            print(line)
        } catch {
            throw fail(error.message, code: 2)
        }
    }
}

/// `facet keys`: the key directory's own backups, and rotation.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Back up, restore and rotate the archive's keys.",
        subcommands: [KeysBackupCommand.self, KeysRestoreCommand.self, KeysRotateCommand.self])
}

/// The passphrase of a key backup: `FACET_KEY_BACKUP_PASSPHRASE`, or the first line of `--passphrase-file`.
func keyBackupPassphrase(_ file: String?) throws -> String {
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw fail("the passphrase file cannot be read", code: 2)
        }
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }
    guard let passphrase = ProcessInfo.processInfo.environment["FACET_KEY_BACKUP_PASSPHRASE"], !passphrase.isEmpty
    else { throw fail("give the passphrase in FACET_KEY_BACKUP_PASSPHRASE or --passphrase-file", code: 2) }
    return passphrase
}

/// `facet keys backup --out FILE [--days 30]`.
struct KeysBackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Seal the key directory (and the master key) into one file under a passphrase; it expires.")

    @Option(name: .customLong("data-dir"), help: "The archive's data folder (its keys are in DATA/keys).")
    var dataDirectory: String = "./facet-data"

    @Option(name: .customLong("out"), help: "The key backup file to write (a new file).")
    var output: String

    @Option(help: "Days until the key backup expires and is refused (1 to 366).")
    var days: Int = 30

    @Option(name: .customLong("passphrase-file"), help: "A file whose first line is the passphrase.")
    var passphraseFile: String?

    func run() throws {
        let passphrase = try keyBackupPassphrase(passphraseFile)
        let keys = URL(fileURLWithPath: dataDirectory).appendingPathComponent("keys")
        guard FileManager.default.fileExists(atPath: keys.path) else {
            throw fail("no keys under the data folder", code: 2)
        }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw fail("the key backup file exists already; name a new one", code: 2)
        }
        do throws(ArchiveError) {
            let sealed = try KeyBackup.make(
                keyDirectory: keys, masterKeyFile: MasterKeyLocation.file(), passphrase: passphrase, days: days)
            let fd = open(output, O_WRONLY | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw ArchiveError(.io, "the key backup file cannot be created") }
            let written = sealed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd)
            close(fd)
            guard written == sealed.count, synced == 0 else {
                throw ArchiveError(.io, "the key backup file cannot be written")
            }
            print("key backup written; it expires in \(days) days. Keep it apart from the data backups.")
        } catch {
            throw fail(error.message, code: 2)
        }
    }
}

/// `facet keys restore FILE`: into an empty key directory.
struct KeysRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restore a key backup into an empty DATA/keys (refused once expired).")

    @Option(name: .customLong("data-dir"), help: "The archive's data folder.")
    var dataDirectory: String = "./facet-data"

    @Option(name: .customLong("passphrase-file"), help: "A file whose first line is the passphrase.")
    var passphraseFile: String?

    @Argument(help: "The key backup file.")
    var file: String

    func run() throws {
        let passphrase = try keyBackupPassphrase(passphraseFile)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw fail("the key backup file cannot be read", code: 2)
        }
        do {
            let (files, expires) = try KeyBackup.open(data, passphrase: passphrase)
            try KeyBackup.restore(
                files, into: URL(fileURLWithPath: dataDirectory).appendingPathComponent("keys"))
            print(
                "restored \(files.count) key files (the backup expires \(Formatting.timestamp(expires))); keys that "
                    + "disposals destroyed since are destroyed again when the server starts")
        } catch {
            throw fail(error.message, code: 2)
        }
    }
}

/// `facet keys rotate --master | --tenant NAME | --all`: new key-encryption keys, with the server stopped.
struct KeysRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Rotate the master key and/or a clinic's key (nothing is re-encrypted but the keys they wrap).",
        discussion: """
            Stop the server first (the data folder's lock is taken). The master key the archive was made with stays \
            the root of the server-wide derived keys, wrapped by the new one; a clinic's rotation re-wraps its \
            patients' keys. Every rotation is written to the clinic's audit log. Make a key backup afterwards.
            """)

    @Option(name: .customLong("data-dir"), help: "The archive's data folder.")
    var dataDirectory: String = "./facet-data"

    @Flag(help: "Rotate the master key.")
    var master = false

    @Option(help: "Rotate this clinic's key (repeatable).")
    var tenant: [String] = []

    @Flag(help: "Rotate the master key and every clinic's key.")
    var all = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        if let index = environment["FACET_INDEX"], !index.isEmpty {
            throw fail(
                "a PostgreSQL setup keeps its clinics' keys in the database: rotation there is not built", code: 2)
        }
        let data = URL(fileURLWithPath: dataDirectory)
        let keys = data.appendingPathComponent("keys")
        guard FileManager.default.fileExists(atPath: data.appendingPathComponent("index.sqlite").path),
            FileManager.default.fileExists(atPath: keys.path)
        else { throw fail("no archive under the data folder", code: 2) }
        var tenants = tenant
        if all {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: keys.path)) ?? []
            tenants = names.filter { $0.hasPrefix("tenant-") && $0.hasSuffix(".key") && !$0.hasSuffix(".wrap.key") }
                .map { String($0.dropFirst(7).dropLast(4)) }.sorted()
        }
        guard master || all || !tenants.isEmpty else {
            throw fail("say what to rotate: --master, --tenant NAME or --all", code: 2)
        }
        try initializeDCMTK()
        do throws(ArchiveError) {
            // Opening the archive takes the data folder's lock: a running server keeps it (and this refuses).
            let (archive, _) = try await ArchiveService.openEmbedded(dataDirectory: data, environment: environment)
            var done: [(String, KeyRotation.Outcome)] = []
            if master || all {
                done.append(("default", try KeyRotation.rotateMaster(keyDirectory: keys, environment: environment)))
            }
            for name in tenants {
                done.append(
                    (name, try KeyRotation.rotateTenant(keyDirectory: keys, tenant: name, environment: environment)))
            }
            let user = environment["USER"].map { "cli/\($0)" } ?? "cli"
            for (name, outcome) in done {
                let action =
                    "key rotation (\(outcome.what): \(outcome.oldID) -> \(outcome.newID), \(outcome.rewrapped) keys re-wrapped)"
                if name == "default" {
                    try await archive.audit.record(
                        AuditEvent(actor: user, address: "local", action: action, outcome: "success"),
                        durability: .immediate)
                } else {
                    let folder = data.appendingPathComponent("tenants").appendingPathComponent(name)
                    let (clinic, _) = try await ArchiveService.openEmbedded(
                        dataDirectory: folder, keyDirectory: keys, tenant: name, environment: environment)
                    try await clinic.audit.record(
                        AuditEvent(actor: user, address: "local", action: action, outcome: "success"),
                        durability: .immediate)
                }
                print(
                    "rotated the \(outcome.what) key: \(outcome.oldID) -> \(outcome.newID); \(outcome.rewrapped) keys re-wrapped"
                )
            }
            print("make a new key backup now (facet keys backup): older ones hold the old keys until they expire")
        } catch {
            throw fail(error.message, code: error.code == .io ? 3 : 2)
        }
    }
}
