import ArgumentParser
import DICOMCodec
import DICOMCore
import Foundation

/// `facet dump`: print a DICOM file's dataset.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a DICOM Part-10 file's dataset (as DICOM JSON with --json).",
        discussion: "Pixel data and values longer than --bulk-threshold bytes are not loaded; in JSON they appear "
            + "as a BulkDataURI naming the file and the tag path."
    )

    @Argument(help: "A DICOM Part-10 file.")
    var file: String

    @Flag(name: .long, help: "Print DICOM JSON (PS3.18 Annex F).")
    var json = false

    @Flag(name: .long, help: "Include File Meta Information (group 0002).")
    var meta = false

    @Option(name: .customLong("bulk-threshold"), help: "Binary values longer than this many bytes are not inlined.")
    var bulkThreshold: UInt32 = 1024

    func run() throws {
        try initializeDCMTK()
        let parsed: DICOMFile
        do {
            parsed = try Part10.read(path: file, bulkThreshold: bulkThreshold)
        } catch {
            throw fail(error.message)
        }
        var dataset = parsed.dataset
        if meta { for element in parsed.meta.elements { dataset.set(element) } }
        if json {
            let base = URL(fileURLWithPath: file).absoluteString
            let options = DICOMJSON.Options(
                inlineBinaryThreshold: Int(bulkThreshold),
                bulkDataURI: { path in base + "#" + path.map(\.hex).joined(separator: "/") },
                prettyPrinted: true)
            print(DICOMJSON.encode(dataset, options: options))
        } else {
            print(TextDump.render(dataset), terminator: "")
        }
    }
}

/// A readable listing: one line per element, nested items indented.
enum TextDump {
    static func render(_ dataset: Dataset, depth: Int = 0) -> String {
        var out = ""
        let indent = String(repeating: "  ", count: depth)
        for element in dataset.elements {
            let keyword =
                TagDictionary.entry(for: element.tag)?.keyword ?? (element.tag.isPrivate ? "Private" : "Unknown")
            out += "\(indent)\(element.tag) \(element.vr.rawValue) \(keyword)"
            switch element.value {
            case .sequence(let items):
                out += " (\(items.count) item\(items.count == 1 ? "" : "s"))\n"
                for (index, item) in items.enumerated() {
                    out += "\(indent)  item \(index + 1)\n" + render(item, depth: depth + 2)
                }
                continue
            case .bytes(let data): out += " <\(data.count) bytes>"
            case .bulk(let length): out += length == UInt32.max ? " <encapsulated>" : " <\(length) bytes, not loaded>"
            case .fragments(let fragments): out += " <\(fragments.count) fragments>"
            case .bulkURI(let uri): out += " <\(uri)>"
            default:
                let values = dataset.strings(element.tag) ?? []
                out += " [" + values.joined(separator: "\\") + "]"
            }
            out += "\n"
        }
        return out
    }
}
