import DICOMCore
import Foundation
import MeshKit
import Testing

@testable import DICOMCodec

/// The HTML form of the comparison report: the PDF's content, escaped, self-contained (no script, no fetch).
@Suite struct ComparisonHTMLTests {
    static func content(title: String) -> ComparisonPDF.Content {
        // A tetrahedron coloured red and blue, so that the views are not blank.
        let mesh = Mesh(
            positions: [SIMD3(0, 0, 0), SIMD3(40, 0, 0), SIMD3(0, 40, 0), SIMD3(0, 0, 40)],
            triangles: [SIMD3(0, 2, 1), SIMD3(0, 1, 3), SIMD3(0, 3, 2), SIMD3(1, 2, 3)])
        let colors: [SIMD3<UInt8>] = [SIMD3(255, 0, 0), SIMD3(0, 0, 255), SIMD3(255, 255, 255), SIMD3(255, 0, 0)]
        let figures = ComparisonSR.Figures(
            volumeChangeML: 0.6123, positiveVolumeML: 0.65, negativeVolumeML: -0.04, roiAreaMM2: 1885.2,
            areaChangeMM2: 12.5, meanDisplacementMM: 0.32, maxDisplacementMM: 1.97, p95DisplacementMM: 1.5,
            registrationRMSMM: 0.11, volumeChangeCI95ML: 0.5712...0.6534)
        return ComparisonPDF.Content(
            title: title, patientName: "Müller^Zoë", patientID: "P-7<b>", birthDate: "19850214",
            before: ComparisonPDF.Capture(date: "20260101", device: "Canfield VECTRA H2"),
            after: ComparisonPDF.Capture(date: "20260301", device: "Canfield VECTRA H2"),
            region: "sphere at (35.0, -10.0, 50.0) mm, radius 24.5 mm", figures: figures, heatmapScaleMM: 2,
            histogram: Histogram(binWidthMM: 0.25, lowerMM: -1, areasMM2: [0, 10, 50, 200, 80, 0, 0, 5]),
            views: ComparisonPDF.views(mesh, colors: colors, size: 96), version: "1.2.3")
    }

    @Test func thePageCarriesTheFiguresTheNameAndThreeViewsAndNothingRuns() throws {
        let html = try ComparisonHTML.make(Self.content(title: "cheek filler <script>alert(1)</script>"))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        #expect(html.contains("Zoë Müller"))
        #expect(html.contains("+0.61 mL"))
        #expect(html.contains("95 % interval +0.57 to +0.65 mL"))
        #expect(html.contains("2026-01-01") && html.contains("2026-03-01") && html.contains("Canfield VECTRA H2"))
        #expect(html.contains("radius 24.5 mm") && html.contains("Facet 1.2.3"))
        // Data is text, never markup.
        #expect(!html.lowercased().contains("<script"))
        #expect(html.contains("cheek filler &lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("P-7&lt;b&gt;"))
        // One style element, exactly the one whose hash the server allows.
        #expect(html.components(separatedBy: "<style>").count == 2)
        #expect(html.contains("<style>\(ComparisonHTML.style)</style>"))
        #expect(!html.contains(" style="))
        // Three views, each a PNG libpng reads back at the size drawn, with red and blue pixels in it.
        let sources = html.components(separatedBy: "src=\"data:image/png;base64,").dropFirst().map {
            String($0.prefix { $0 != "\"" })
        }
        #expect(sources.count == 3)
        for source in sources {
            let png = try #require(Data(base64Encoded: source))
            let (info, pixels) = try DCMTK.decodePNG(png, maxDimension: 1000, maxPixels: 1_000_000)
            #expect(info.width == 96 && info.height == 96)
            let bytes = [UInt8](pixels)
            let channels = Int(info.samples_per_pixel)
            var distinct = Set<Int>()
            for p in stride(from: 0, to: bytes.count - channels + 1, by: channels) {
                distinct.insert(Int(bytes[p]) << 16 | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2]))
            }
            #expect(distinct.count > 10, "a blank view")
        }
        // The histogram's bars: one per non-empty bin between the first and last.
        #expect(
            html.components(separatedBy: "fill=\"#d95a4c\"").count - 1
                + html.components(separatedBy: "fill=\"#4c5ad9\"").count - 1 == 5)
    }

    @Test func anEmptyHistogramAndNoIntervalAreSaidInWords() throws {
        var content = Self.content(title: "t")
        content.histogram = Histogram(binWidthMM: 0.25, lowerMM: 0, areasMM2: [0, 0])
        content.figures.volumeChangeCI95ML = nil
        content.figures.maxDisplacementMM = .nan
        let html = try ComparisonHTML.make(content)
        #expect(html.contains("No area was measured."))
        #expect(html.contains("95 % interval: not estimated"))
        #expect(html.contains("not measured"))
    }

    @Test func controlCharactersAreReplaced() {
        #expect(ComparisonHTML.escape("a\u{0}b\u{1B}c\"'&") == "a\u{FFFD}b\u{FFFD}c&quot;&#39;&amp;")
    }
}
