import ArgumentParser
import DICOMCodec
import DICOMCore
import Foundation

/// The `facet` command: Facet's archive tools.
@main
struct FacetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facet",
        abstract: "Facet: the archive for clinical photographs and 3D surface captures.",
        version: Facet.version,
        subcommands: [
            ServeCommand.self, DicomizeCommand.self, DumpCommand.self, MeshCommand.self, CompareCommand.self,
            AuditCommand.self, UsersCommand.self, MigrateCommand.self, WatermarkCommand.self, BackupCommand.self,
            KeysCommand.self,
        ]
    )
}

/// One readable line on stderr, then the exit code. Never includes PHI: callers pass codec messages only.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data("facet: \(message)\n".utf8))
    return ExitCode(code)
}

func initializeDCMTK() throws {
    do {
        try Part10.initialize()
    } catch {
        throw fail(error.message, code: 3)
    }
}
