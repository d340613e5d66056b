import DICOMCore
import Foundation

/// Converts a set of input files (photos and meshes of one patient and study) into DICOM Part-10 files in a
/// folder. Each input is all-or-nothing: an OBJ whose MTL or texture fails leaves no file behind.
public struct Dicomizer: Sendable {
    /// The outcome for one input file.
    public struct Outcome: Sendable {
        public var input: URL
        public var written: [URL]
        public var error: DICOMCodecError?
    }

    public var context: InstanceContext
    public var outputDirectory: URL

    public init(context: InstanceContext, outputDirectory: URL) {
        self.context = context
        self.outputDirectory = outputDirectory
    }

    /// Input kinds, decided by content where the content says (JPEG, PNG) and by extension for text meshes.
    enum InputKind { case photo, stl, obj, mtl, ply }

    static func kind(of url: URL, head: Data) -> InputKind? {
        if PhotoConverter.kind(of: head) != nil { return .photo }
        switch url.pathExtension.lowercased() {
        case "stl": return .stl
        case "obj": return .obj
        case "mtl": return .mtl
        case "ply": return .ply
        case "jpg", "jpeg", "png": return .photo
        default: return nil
        }
    }

    public func run(_ inputs: [URL]) -> [Outcome] {
        let photoSeries = context.uids.make()
        var photoNumber = 0
        var nextSeriesNumber = 2
        var outcomes: [Outcome] = []
        for input in inputs {
            do throws(DICOMCodecError) {
                let data = try MeshConverter.read(input, what: "input")
                let prepared: [PreparedInstance]
                switch Self.kind(of: input, head: data.prefix(16)) {
                case .photo:
                    photoNumber += 1
                    prepared = [
                        try PhotoConverter.convert(
                            data, context: context,
                            placement: .init(
                                seriesInstanceUID: photoSeries, seriesNumber: 1, instanceNumber: photoNumber))
                    ]
                case .stl:
                    prepared = try MeshConverter.convertSTL(data, context: context, seriesNumber: nextSeriesNumber)
                    nextSeriesNumber += 1
                case .obj:
                    prepared = try MeshConverter.convertOBJ(
                        at: input, context: context, seriesNumber: nextSeriesNumber,
                        textureSeriesNumber: nextSeriesNumber + 1)
                    nextSeriesNumber += 2
                case .mtl:
                    throw DICOMCodecError(.unsupported, "an MTL is stored with the OBJ that names it; pass the OBJ")
                case .ply:
                    prepared = try MeshConverter.convertPLY(data, context: context, seriesNumber: nextSeriesNumber)
                    nextSeriesNumber += 1
                case nil:
                    if data.isEmpty { throw DICOMCodecError(.invalidImage, "file is empty") }
                    throw DICOMCodecError(.unsupported, "unrecognised input: expected JPEG, PNG, STL or OBJ")
                }
                outcomes.append(Outcome(input: input, written: try write(prepared), error: nil))
            } catch {
                outcomes.append(Outcome(input: input, written: [], error: error))
            }
        }
        return outcomes
    }

    /// Writes every instance of one input; on any failure removes the ones already written.
    func write(_ instances: [PreparedInstance]) throws(DICOMCodecError) -> [URL] {
        var written: [URL] = []
        for instance in instances {
            // File names carry the SOP Instance UID only: never anything identifying.
            let url = outputDirectory.appendingPathComponent(instance.sopInstanceUID + ".dcm")
            do {
                try Part10.write(instance.dataset, transferSyntax: instance.transferSyntaxUID, to: url.path)
                written.append(url)
            } catch {
                for file in written { try? FileManager.default.removeItem(at: file) }
                throw error
            }
        }
        return written
    }
}
