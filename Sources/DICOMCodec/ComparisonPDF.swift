import CCairo
import DICOMCore
import Foundation
import MeshKit

/// The comparison report a clinician reads (issue 11 §2), one A4 page drawn with cairo straight into memory (no
/// file ever holds it unencrypted): the patient, both captures, the region, the figures, the change map from three
/// sides with its colour legend, the displacement histogram, how it was measured, and Facet's version. Text is set
/// in DejaVu Sans through fontconfig, so accented names print as written.
public enum ComparisonPDF {
    /// One capture as the report names it.
    public struct Capture: Sendable {
        public var date: String
        public var device: String

        public init(date: String, device: String) {
            self.date = date
            self.device = device
        }
    }

    public struct Content: Sendable {
        public var title: String
        /// The patient's name in DICOM form (`Family^Given^...`), their ID and birth date (`YYYYMMDD`).
        public var patientName: String
        public var patientID: String
        public var birthDate: String
        public var before: Capture
        public var after: Capture
        /// The region of interest as words (`sphere at (x, y, z) mm, radius r mm`).
        public var region: String
        public var figures: ComparisonSR.Figures
        public var heatmapScaleMM: Double
        public var histogram: Histogram
        /// The change map from the front, the left and the right.
        public var views: [SurfaceRenderer.Image]
        public var version: String
        public var generated: Date

        public init(
            title: String, patientName: String, patientID: String, birthDate: String, before: Capture, after: Capture,
            region: String, figures: ComparisonSR.Figures, heatmapScaleMM: Double, histogram: Histogram,
            views: [SurfaceRenderer.Image], version: String, generated: Date = Date()
        ) {
            self.title = title
            self.patientName = patientName
            self.patientID = patientID
            self.birthDate = birthDate
            self.before = before
            self.after = after
            self.region = region
            self.figures = figures
            self.heatmapScaleMM = heatmapScaleMM
            self.histogram = histogram
            self.views = views
            self.version = version
            self.generated = generated
        }
    }

    /// The change map from the front, the left and the right, as the report shows it.
    public static func views(_ mesh: Mesh, colors: [SIMD3<UInt8>], size: Int = 600) -> [SurfaceRenderer.Image] {
        // One view per core at once.
        let views = SurfaceRenderer.View.allCases
        return parallelMap(views.count, minimumChunk: 1) { range in
            range.map { SurfaceRenderer.render(mesh, colors: colors, view: views[$0], width: size, height: size) }
        }
    }

    /// A region of interest in words.
    public static func describe(_ region: Region?) -> String {
        switch region {
        case .sphere(let c, let r)?:
            String(format: "sphere at (%.1f, %.1f, %.1f) mm, radius %.1f mm", c.x, c.y, c.z, r)
        case .box(let a, let b)?:
            String(format: "box from (%.1f, %.1f, %.1f) to (%.1f, %.1f, %.1f) mm", a.x, a.y, a.z, b.x, b.y, b.z)
        case .vertices(let set)?: "\(set.count) vertices of BEFORE"
        case nil: "the whole surface"
        }
    }

    static let width = 595.28
    static let height = 841.89

    /// The report as PDF bytes.
    public static func make(_ content: Content) throws(DICOMCodecError) -> Data {
        let sink = Sink()
        guard
            let surface = cairo_pdf_surface_create_for_stream(
                { closure, bytes, length in
                    guard let closure, let bytes else { return CAIRO_STATUS_WRITE_ERROR }
                    Unmanaged<Sink>.fromOpaque(closure).takeUnretainedValue().data.append(bytes, count: Int(length))
                    return CAIRO_STATUS_SUCCESS
                }, Unmanaged.passUnretained(sink).toOpaque(), width, height)
        else { throw DICOMCodecError(.invalidImage, "the PDF report cannot be started") }
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, "Facet comparison report")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Facet \(content.version)")
        let cr = cairo_create(surface)
        draw(content, cr)
        cairo_destroy(cr)
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        cairo_surface_destroy(surface)
        withExtendedLifetime(sink) {}
        guard status == CAIRO_STATUS_SUCCESS, sink.data.starts(with: Array("%PDF".utf8)) else {
            throw DICOMCodecError(.invalidImage, "the PDF report cannot be written")
        }
        return sink.data
    }

    private final class Sink {
        var data = Data()
    }

    // MARK: drawing

    static func text(
        _ cr: OpaquePointer?, _ x: Double, _ y: Double, _ string: String, size: Double = 9.5, bold: Bool = false
    ) {
        cairo_select_font_face(
            cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, size)
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1)
        cairo_move_to(cr, x, y)
        cairo_show_text(cr, string)
    }

    static func signed(_ value: Double, _ digits: Int = 2) -> String {
        value.isFinite ? String(format: "%+.\(digits)f", value) : "not measured"
    }

    static func plain(_ value: Double, _ digits: Int = 2) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "not measured"
    }

    /// The figures as the report lists them: (label, value with units); the first is the headline.
    static func rows(_ f: ComparisonSR.Figures) -> [(String, String)] {
        [
            (
                "Volume change",
                "\(signed(f.volumeChangeML)) mL   "
                    + (f.volumeChangeCI95ML.map {
                        "(95 % interval \(signed($0.lowerBound)) to \(signed($0.upperBound)) mL)"
                    }
                        ?? "(95 % interval: not estimated)")
            ),
            ("Volume increase / decrease", "\(signed(f.positiveVolumeML)) mL / \(signed(f.negativeVolumeML)) mL"),
            ("Mean displacement", "\(signed(f.meanDisplacementMM)) mm"),
            ("Maximum displacement", "\(signed(f.maxDisplacementMM)) mm"),
            ("95th percentile |displacement|", "\(plain(f.p95DisplacementMM)) mm"),
            ("Area change", "\(signed(f.areaChangeMM2, 1)) mm²   (region area \(plain(f.roiAreaMM2, 1)) mm²)"),
            ("Registration RMS", "\(plain(f.registrationRMSMM)) mm (residual distance of the aligned surfaces)"),
        ]
    }

    /// How the figures were made, in two sentences (three lines on the page).
    static let method = [
        "AFTER was registered rigidly onto BEFORE (landmarks when given, then point-to-plane ICP outside the region).",
        "Displacement is measured along BEFORE's normals; the volume change is its integral over the region's area,",
        "its 95 % interval combines the alignment's residuals and the capture noise measured outside the region.",
    ]

    /// `Family^Given^Middle^Prefix^Suffix` as "Prefix Given Middle Family Suffix".
    static func displayName(_ dicom: String) -> String {
        let alphabetic = dicom.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = alphabetic.split(separator: "^", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        func part(_ index: Int) -> String { index < parts.count ? parts[index] : "" }
        let words = [part(3), part(1), part(2), part(0), part(4)].filter { !$0.isEmpty }
        return words.isEmpty ? "(no name)" : words.joined(separator: " ")
    }

    static func date(_ dicom: String) -> String {
        let digits = dicom.trimmingCharacters(in: .whitespaces)
        guard digits.utf8.count == 8, digits.allSatisfy(\.isNumber) else { return digits.isEmpty ? "unknown" : digits }
        return "\(digits.prefix(4))-\(digits.dropFirst(4).prefix(2))-\(digits.suffix(2))"
    }

    static func draw(_ content: Content, _ cr: OpaquePointer?) {
        let left = 40.0
        text(cr, left, 52, "3D surface comparison", size: 17, bold: true)
        text(cr, left, 70, content.title, size: 11)
        text(cr, left, 96, "Patient", bold: true)
        text(
            cr, left + 70, 96,
            "\(displayName(content.patientName))   ID \(content.patientID)   born \(date(content.birthDate))")
        text(cr, left, 112, "Before", bold: true)
        text(cr, left + 70, 112, "\(date(content.before.date))   \(content.before.device)")
        text(cr, left, 128, "After", bold: true)
        text(cr, left + 70, 128, "\(date(content.after.date))   \(content.after.device)")
        text(cr, left, 144, "Region", bold: true)
        text(cr, left + 70, 144, content.region)

        let rows = Self.rows(content.figures)
        for (index, row) in rows.enumerated() {
            let y = 174 + Double(index) * 16
            text(cr, left, y, row.0, bold: index == 0)
            text(cr, left + 170, y, row.1, bold: index == 0)
        }

        // The change map from three sides.
        let side = 165.0
        let labels = ["front", "left", "right"]
        for (index, image) in content.views.prefix(3).enumerated() {
            let x = left + Double(index) * (side + 10)
            picture(cr, image, x: x, y: 300, size: side)
            text(cr, x, 300 + side + 14, labels[index], size: 9)
        }
        legend(cr, x: left, y: 500, width: 3 * side + 20, scale: content.heatmapScaleMM)
        histogram(cr, content.histogram, x: left, y: 560, width: 3 * side + 20, height: 120)

        text(cr, left, 730, "Method", bold: true)
        for (index, line) in Self.method.enumerated() { text(cr, left, 746 + Double(index) * 14, line) }
        let stamp = ISO8601DateFormatter().string(from: content.generated)
        text(cr, left, 810, "Facet \(content.version)   generated \(stamp)", size: 8)
    }

    /// An RGBA image drawn into a `size`×`size` box, keeping its aspect.
    static func picture(_ cr: OpaquePointer?, _ image: SurfaceRenderer.Image, x: Double, y: Double, size: Double) {
        guard image.width > 0, image.height > 0, image.rgba.count == image.width * image.height * 4,
            let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(image.width), Int32(image.height))
        else { return }
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        if let data = cairo_image_surface_get_data(surface) {
            for row in 0..<image.height {
                for column in 0..<image.width {
                    let source = (row * image.width + column) * 4
                    let target = row * stride + column * 4
                    // RGB24 is a native-endian 32-bit word 0x00RRGGBB: B, G, R, unused on little-endian machines.
                    data[target] = image.rgba[source + 2]
                    data[target + 1] = image.rgba[source + 1]
                    data[target + 2] = image.rgba[source]
                    data[target + 3] = 255
                }
            }
        }
        cairo_surface_mark_dirty(surface)
        let scale = size / Double(max(image.width, image.height))
        cairo_save(cr)
        cairo_translate(cr, x, y)
        cairo_scale(cr, scale, scale)
        cairo_set_source_surface(cr, surface, 0, 0)
        cairo_paint(cr)
        cairo_restore(cr)
        cairo_surface_destroy(surface)
        cairo_set_source_rgb(cr, 0.7, 0.7, 0.7)
        cairo_set_line_width(cr, 0.5)
        cairo_rectangle(cr, x, y, Double(image.width) * scale, Double(image.height) * scale)
        cairo_stroke(cr)
    }

    /// The colour scale of the change map: −scale (blue) through 0 (white) to +scale (red), in mm.
    static func legend(_ cr: OpaquePointer?, x: Double, y: Double, width: Double, scale: Double) {
        let steps = 120
        let values = (0..<steps).map { -scale + 2 * scale * (Double($0) + 0.5) / Double(steps) }
        let colors = ChangeAnalysis.heatmapColors(values, scaleMM: scale)
        for (index, color) in colors.enumerated() {
            cairo_set_source_rgb(cr, Double(color.x) / 255, Double(color.y) / 255, Double(color.z) / 255)
            cairo_rectangle(cr, x + width * Double(index) / Double(steps), y, width / Double(steps) + 0.3, 12)
            cairo_fill(cr)
        }
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5)
        cairo_set_line_width(cr, 0.5)
        cairo_rectangle(cr, x, y, width, 12)
        cairo_stroke(cr)
        text(cr, x, y + 26, "\(signed(-scale, 1)) mm (inward)", size: 8.5)
        text(cr, x + width / 2 - 8, y + 26, "0", size: 8.5)
        text(cr, x + width - 95, y + 26, "\(signed(scale, 1)) mm (outward)", size: 8.5)
        text(cr, x, y - 6, "Change map: displacement along BEFORE's normal; grey where AFTER was not found", size: 8.5)
    }

    /// Area per displacement bin as bars, with the bins' range.
    static func histogram(
        _ cr: OpaquePointer?, _ histogram: Histogram, x: Double, y: Double, width: Double, height: Double
    ) {
        text(cr, x, y - 6, "Displacement histogram (area per bin)", size: 8.5)
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5)
        cairo_set_line_width(cr, 0.5)
        cairo_rectangle(cr, x, y, width, height)
        cairo_stroke(cr)
        let areas = histogram.areasMM2
        guard let largest = areas.max(), largest > 0, !areas.isEmpty else {
            text(cr, x + 8, y + height / 2, "no area was measured", size: 8.5)
            return
        }
        let bar = width / Double(areas.count)
        for (index, area) in areas.enumerated() where area > 0 {
            let center = histogram.lowerMM + (Double(index) + 0.5) * histogram.binWidthMM
            cairo_set_source_rgb(cr, center >= 0 ? 0.85 : 0.3, 0.35, center >= 0 ? 0.3 : 0.85)
            let h = height * area / largest
            cairo_rectangle(cr, x + Double(index) * bar, y + height - h, max(bar - 0.4, 0.3), h)
            cairo_fill(cr)
        }
        let upper = histogram.lowerMM + Double(areas.count) * histogram.binWidthMM
        text(cr, x, y + height + 12, "\(signed(histogram.lowerMM, 1)) mm", size: 8)
        text(cr, x + width - 45, y + height + 12, "\(signed(upper, 1)) mm", size: 8)
    }
}
