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
        commandName: "keys", abstract: "Back up and restore the archive's keys.",
        subcommands: [KeysBackupCommand.self, KeysRestoreCommand.self])
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
