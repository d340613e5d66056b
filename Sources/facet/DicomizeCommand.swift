import ArgumentParser
import DICOMCodec
import DICOMCore
import Foundation

/// `facet dicomize`: photos and 3D captures in, DICOM Part-10 files out.
struct DicomizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dicomize",
        abstract: "Convert JPEG/PNG photos and STL/OBJ 3D captures to DICOM.",
        discussion: """
            Photos become VL Photographic Image objects (the JPEG data is kept bit for bit; EXIF, GPS and other \
            metadata segments are removed). Binary STL and OBJ (with its MTL and textures) become Encapsulated \
            STL/OBJ/MTL objects holding the original bytes. One .dcm per object is written to --out, named by its \
            SOP Instance UID, and each written path is printed. Exit status is 0 only if every input was written.
            Regions: \(AnatomicRegion.allCases.map(\.rawValue).joined(separator: ", ")).
            Views: \(PhotoView.allCases.map(\.rawValue).joined(separator: ", ")).
            """
    )

    @Argument(help: "Input files: .jpg/.jpeg/.png photos, .stl, .obj.")
    var inputs: [String]

    @Option(name: .long, help: "Folder to write the DICOM files into (created if missing).")
    var out: String

    @Option(name: .customLong("patient-id"), help: "Patient ID.")
    var patientID: String?

    @Option(name: .customLong("patient-name"), help: "Patient name as Family^Given^Middle^Prefix^Suffix.")
    var patientName: String?

    @Option(name: .customLong("study-uid"), help: "Study Instance UID to add the objects to (default: a new study).")
    var studyUID: String?

    @Option(name: .long, help: "Anatomic region (for example face, breast, abdomen).")
    var region: String?

    @Option(name: .long, help: "Photographic view (frontal, oblique-left, ..., submental, birds-eye).")
    var view: String?

    @Option(name: .long, help: "Timing relative to treatment: before, after or follow-up.")
    var timing: String?

    @Option(name: .long, help: "Image laterality: R, L, B or U.")
    var laterality: String?

    @Option(name: .long, help: "JSON file with patient, study, series, region, view, laterality, timing, equipment.")
    var metadata: String?

    @Option(name: .customLong("uid-root"), help: "Root for new UIDs (default 2.25, UUID-derived). Also FACET_UID_ROOT.")
    var uidRoot: String?

    func run() throws {
        try initializeDCMTK()
        var clinical = ClinicalMetadata()
        do throws(DICOMCodecError) {
            if let metadata {
                guard let data = FileManager.default.contents(atPath: metadata) else {
                    throw DICOMCodecError(.io, "metadata file cannot be read")
                }
                clinical = try ClinicalMetadata.decode(json: data)
            }
            if let patientID { clinical.patientID = patientID }
            if let patientName { clinical.patientName = patientName }
            if let studyUID { clinical.studyInstanceUID = studyUID }
            if let region { try clinical.setRegion(region) }
            if let view { try clinical.setView(view) }
            if let timing { try clinical.setTiming(timing) }
            if let laterality { clinical.laterality = laterality }
            try clinical.normalize()
        } catch {
            throw fail(error.message, code: 2)
        }
        let generator: UIDGenerator
        do {
            generator = try UIDGenerator(
                root: uidRoot ?? ProcessInfo.processInfo.environment["FACET_UID_ROOT"] ?? UID.uuidRoot)
        } catch {
            throw fail("invalid UID root: \(error.message)", code: 2)
        }
        let outputDirectory = URL(fileURLWithPath: out, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw fail("output folder cannot be created", code: 2)
        }
        let context = InstanceContext(
            metadata: clinical, uids: generator,
            deviceSerialNumber: ProcessInfo.processInfo.environment["FACET_DEVICE_SERIAL_NUMBER"] ?? "UNSPECIFIED")
        let dicomizer = Dicomizer(context: context, outputDirectory: outputDirectory)
        let urls = inputs.map { URL(fileURLWithPath: $0) }
        var failures = 0
        for (index, outcome) in dicomizer.run(urls).enumerated() {
            if let error = outcome.error {
                failures += 1
                // Input names can carry patient names, so inputs are named by position and extension only.
                let ext = outcome.input.pathExtension.isEmpty ? "" : " (.\(outcome.input.pathExtension.lowercased()))"
                _ = fail("input \(index + 1)\(ext): \(error.message)")
            }
            for url in outcome.written { print(url.path) }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
