import ArgumentParser
import DICOMCodec
import Foundation

/// `facet watermark read FILE`: the invisible mark of a photo that left the clinic (issue 12 §3).
struct WatermarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watermark",
        abstract: "Read the invisible watermark of an exported or shared photo.",
        subcommands: [Read.self])

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "read",
            abstract: "Print the practice code, patient pseudonym and export (or share) id a photo carries.",
            discussion:
                "FILE is a JPEG or PNG, possibly re-encoded or resized since it left. The export's manifest names "
                + "the same practice code and export id; the pseudonym is the P-number of its file names. Exit 0 "
                + "when a mark is found, 1 when none is (cropped, rotated or never marked), 2 when the file cannot be read."
        )

        @Argument(help: "A JPEG or PNG file.")
        var file: String

        @Option(name: .long, help: "The practice's name, to check the practice code against.")
        var practice: String?

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() throws {
            try initializeDCMTK()
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw fail("the file cannot be read", code: 2)
            }
            let image: RGBImage
            do {
                image = try RGBImage.decode(data)
            } catch {
                throw fail(error.message, code: 2)
            }
            guard let payload = Watermark.read(image) else {
                if json { print("{\"found\":false}") } else { print("no Facet watermark found") }
                throw ExitCode(1)
            }
            let practiceCode = String(format: "%04x", payload.practice)
            let pseudonym = String(format: "P%06x", payload.pseudonym)
            let mark = String(format: "%06x", payload.mark)
            let matches = practice.map { Watermark.practiceCode($0) == payload.practice }
            if json {
                print(
                    "{\"found\":true,\"practice\":\"\(practiceCode)\",\"pseudonym\":\"\(pseudonym)\","
                        + "\"export\":\"\(mark)\"" + (matches.map { ",\"practiceMatches\":\($0)" } ?? "") + "}")
            } else {
                print("practice \(practiceCode)" + (matches.map { $0 ? " (matches)" : " (does not match)" } ?? ""))
                print("patient pseudonym \(pseudonym)")
                print("export or share id starting \(mark)")
            }
        }
    }
}
