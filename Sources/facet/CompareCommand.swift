import ArgumentParser
import DICOMCodec
import Foundation
import MeshKit

/// `facet compare BEFORE AFTER`: what changed between two captures.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Register two captures and measure the change: volume in mL, displacement in mm.",
        discussion: """
            AFTER is rigidly registered onto BEFORE (landmarks if given, then point-to-plane ICP that ignores the \
            region of interest plus a 10 mm margin). Distances are measured from each BEFORE vertex along its \
            normal to AFTER (positive = outward growth); the volume change is their integral over BEFORE's area \
            inside the region. The transform maps AFTER's coordinates into BEFORE's frame (4×4, row-major).
            The volume carries a 95 % interval from the registration's residuals and the noise measured on the \
            unchanged surface outside the region.
            JSON keys: volume_change_ml, roi_area_mm2, mean_displacement_mm, max_displacement_mm, \
            p95_displacement_mm, area_change_mm2, registration_rms_mm, transform, then volume_change_ci95_ml, \
            volume_change_sd_ml (the interval's parts: registration, noise, method), surface_noise_mm, plus \
            positive_volume_ml, \
            negative_volume_ml, uncovered_area_mm2, enclosed_volume_change_ml, heatmap_scale_mm, histogram.
            """)

    @Argument(help: "The earlier capture.")
    var before: String

    @Argument(help: "The later capture.")
    var after: String

    @Option(
        help:
            "Region of interest in BEFORE's frame (mm): sphere:X,Y,Z,R, box:X0,Y0,Z0,X1,Y1,Z1, or mask:FILE of vertex indices."
    )
    var roi: String?

    @Option(help: "Landmarks JSON: {\"before\": {\"name\": [x,y,z], ...}, \"after\": {...}}.")
    var landmarks: String?

    @Option(help: "Units both files are written in: mm, cm, m or in.")
    var units: String = "mm"

    @Option(help: "Write a change map: BEFORE as binary PLY coloured by displacement.")
    var heatmap: String?

    @Option(
        name: .customLong("heatmap-scale"),
        help: "Displacement (mm) shown at full colour; default: the 99th percentile.")
    var heatmapScale: Double?

    @Option(help: "Write the PDF report (the one the server stores with a comparison job).")
    var report: String?

    @Option(help: "The report's title.")
    var title: String = "3D surface comparison"

    @Option(name: .customLong("patient-name"), help: "The patient's name on the report, DICOM form (Family^Given).")
    var patientName: String = ""

    @Option(name: .customLong("patient-id"), help: "The patient's ID on the report.")
    var patientID: String = ""

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let unit = try parseUnit(units)
        let terminal = isatty(STDERR_FILENO) == 1
        var progress: (@Sendable (String) -> Void)?
        if terminal {
            progress = { @Sendable step in FileHandle.standardError.write(Data("\u{1B}[2K\r… \(step)".utf8)) }
        }
        progress?("reading")
        let (beforeMesh, _) = try loadMesh(before, unit: unit)
        let (afterMesh, _) = try loadMesh(after, unit: unit)
        var options = ChangeAnalysis.Options()
        do {
            if let roi { options.region = try Region(parsing: roi) }
        } catch {
            throw fail(error.message, code: 2)
        }
        if let landmarks { options.landmarks = try readLandmarks(landmarks, scale: unit.millimetres) }
        let report: ChangeReport
        do {
            report = try ChangeAnalysis.compare(
                before: beforeMesh, after: afterMesh, options: options, progress: progress)
        } catch {
            if terminal { FileHandle.standardError.write(Data("\u{1B}[2K\r".utf8)) }
            throw fail(error.message)
        }
        if terminal { FileHandle.standardError.write(Data("\u{1B}[2K\r".utf8)) }
        let scale = heatmapScale ?? report.defaultHeatmapScaleMM
        if let heatmap {
            let colors = ChangeAnalysis.heatmapColors(report.vertexDistancesMM, scaleMM: scale)
            do {
                try MeshWriter.binaryPLY(beforeMesh, colors: colors).write(
                    to: URL(fileURLWithPath: heatmap), options: .atomic)
            } catch {
                throw fail("heatmap file cannot be written")
            }
        }
        if let path = self.report {
            let colors = ChangeAnalysis.heatmapColors(report.vertexDistancesMM, scaleMM: scale)
            let content = ComparisonPDF.Content(
                title: title, patientName: patientName, patientID: patientID, birthDate: "",
                before: ComparisonPDF.Capture(date: "", device: URL(fileURLWithPath: before).lastPathComponent),
                after: ComparisonPDF.Capture(date: "", device: URL(fileURLWithPath: after).lastPathComponent),
                region: ComparisonPDF.describe(options.region), figures: ComparisonSR.Figures(report),
                heatmapScaleMM: scale, histogram: report.histogram,
                views: ComparisonPDF.views(beforeMesh, colors: colors), version: Facet.version)
            do {
                try ComparisonPDF.make(content).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw fail("the PDF report cannot be written")
            }
        }
        if json {
            print(report.json(heatmapScaleMM: scale))
        } else {
            print(
                "volume change       \(format3(report.volumeChangeML)) mL (+\(format3(report.positiveVolumeML)) / \(format3(report.negativeVolumeML)))"
            )
            print(
                "95 % interval       \(format3(report.volumeChangeCI95ML.lowerBound)) to \(format3(report.volumeChangeCI95ML.upperBound)) mL"
            )
            print("region area         \(format3(report.roiAreaMM2)) mm²")
            print("mean displacement   \(format3(report.meanDisplacementMM)) mm")
            print("max displacement    \(format3(report.maxDisplacementMM)) mm (one-ring smoothed)")
            print("95th percentile     \(format3(report.p95DisplacementMM)) mm")
            print("area change         \(format3(report.areaChangeMM2)) mm²")
            print("registration RMS    \(format3(report.registrationRMSMM)) mm")
            if let noise = report.surfaceNoiseMM {
                print("surface noise       \(format3(noise)) mm (outside the region)")
            }
        }
    }

    func readLandmarks(_ path: String, scale: Double) throws -> (
        before: [String: SIMD3<Double>], after: [String: SIMD3<Double>]
    ) {
        guard let data = FileManager.default.contents(atPath: path),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw fail("landmarks file is not readable JSON", code: 2) }
        func side(_ key: String) throws -> [String: SIMD3<Double>] {
            guard let entries = root[key] as? [String: Any] else {
                throw fail("landmarks need a \"\(key)\" object", code: 2)
            }
            var points: [String: SIMD3<Double>] = [:]
            for (name, value) in entries {
                guard let xyz = value as? [NSNumber], xyz.count == 3, xyz.allSatisfy({ $0.doubleValue.isFinite }) else {
                    throw fail("each landmark must be [x, y, z]", code: 2)
                }
                points[name] = SIMD3(xyz[0].doubleValue, xyz[1].doubleValue, xyz[2].doubleValue) * scale
            }
            return points
        }
        return (try side("before"), try side("after"))
    }
}
