import Archive
import ArgumentParser
import Foundation

/// `facet migrate --from DATA --to-index postgres://… --to-blobs s3://bucket/prefix`: moves an embedded archive into
/// the server setup. Exit 0 when every instance was copied and read back verified; 1 when verification failed; 2 for
/// bad arguments; 3 when a side cannot be opened or written.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy an embedded archive (data folder) into PostgreSQL and an S3-compatible store, verified.",
        discussion: """
            Rows and encrypted blobs are copied as they are (nothing is decrypted: each clinic's key moves into the \
            database wrapped by the same master key), then every instance is read back through the new setup and \
            checked against the index. Running it again resumes: what was copied is skipped. Stop facet serve on \
            the data folder first. Afterwards serve with the same data folder (keys, accounts, audit log) and \
            index/blobs set to the targets. S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
            """)

    @Option(name: .customLong("from"), help: "The data folder of the embedded archive.")
    var source: String

    @Option(
        name: .customLong("to-index"),
        help:
            "postgres://user:password@host:port/database (default FACET_INDEX: keeps the password off the command line)"
    )
    var index: String?

    @Option(name: .customLong("to-blobs"), help: "s3://bucket/prefix")
    var blobs: String

    @Option(name: .customLong("s3-endpoint"), help: "The S3 endpoint (default: AWS in --s3-region).")
    var endpoint: String?

    @Option(name: .customLong("s3-region"), help: "The S3 region (default us-east-1).")
    var region: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let folder = URL(fileURLWithPath: source)
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("index.sqlite").path) else {
            throw fail("no embedded archive in \(source) (no index.sqlite)", code: 2)
        }
        let location: PostgresDatabase.Location
        let bucket: S3Location
        do throws(ArchiveError) {
            guard let text = index ?? environment["FACET_INDEX"], !text.isEmpty else {
                throw ArchiveError(.invalidInput, "give --to-index or FACET_INDEX")
            }
            location = try PostgresDatabase.Location.parse(text)
            bucket = try S3Location.parse(blobs, endpoint: endpoint, region: region, environment: environment)
        } catch {
            throw fail(error.message, code: 2)
        }
        let database: PostgresDatabase
        do {
            database = try await PostgresDatabase.open(location)
        } catch {
            throw fail("the index database cannot be opened: \(error.message)", code: 3)
        }
        defer { database.close() }
        let scratch = folder.appendingPathComponent("tmp")
        let migration = ArchiveMigration(
            source: folder, database: database,
            objects: { (tenant: String) throws(ArchiveError) -> any ObjectStore in
                try S3ObjectStore(
                    location: tenant == "default" ? bucket : bucket.appending("tenants/\(tenant)"),
                    scratchFolder: scratch)
            }, environment: environment)
        let terminal = isatty(STDERR_FILENO) == 1
        let started = Date()
        let report: ArchiveMigration.Report
        do {
            report = try await migration.run { progress in
                guard terminal else { return }
                let seconds = max(Date().timeIntervalSince(started), 0.001)
                let rate = Double(progress.bytes) / seconds / 1_000_000
                let left =
                    progress.done > 0 ? seconds / Double(progress.done) * Double(progress.total - progress.done) : 0
                FileHandle.standardError.write(
                    Data(
                        String(
                            format: "\r%@: %d/%d blobs, %.1f MB/s, about %.0f s left   ", progress.tenant,
                            progress.done, progress.total, rate, left
                        ).utf8))
            }
        } catch {
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            throw fail(error.message, code: error.code == .integrity ? 1 : error.code == .invalidInput ? 2 : 3)
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        for (tenant, counts) in report.instances.sorted(by: { $0.key < $1.key }) {
            print("\(tenant): \(counts.source) instances, \(counts.verified) verified in the target")
        }
        print(
            "blobs: \(report.blobsCopied) copied (\(report.bytes) bytes), \(report.blobsSkipped) there already; "
                + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
