import Foundation
import MeshKit

/// The comparison report as one self-contained HTML page (issue 11 §2): the same content as `ComparisonPDF`, for
/// a browser or an EMR that shows HTML. Nothing is fetched: the three views are PNG (libpng) in `data:` URLs, the
/// legend and the histogram inline SVG, the style one `<style>` element whose hash the server puts in its
/// Content-Security-Policy (`styleHash`); there is no script. Every text from the data is escaped.
public enum ComparisonHTML {
    /// The page's only style sheet (its SHA-256 goes into the CSP as `'sha256-…'`).
    public static let style = """
        body{font-family:"DejaVu Sans",system-ui,sans-serif;color:#1a1a1a;max-width:60rem;margin:1.5rem auto;\
        padding:0 1rem;line-height:1.35}h1{font-size:1.5rem;margin:0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}\
        .title{margin:.2rem 0 1rem;font-size:1.05rem}table{border-collapse:collapse}th,td{text-align:left;\
        padding:.15rem 1.2rem .15rem 0;vertical-align:top}th{font-weight:600}tr.headline td,tr.headline th{\
        font-weight:700}.views{display:flex;gap:.6rem;flex-wrap:wrap;margin:0}.views figure{margin:0}\
        .views img{width:15rem;height:15rem;border:1px solid #ccc}figcaption{font-size:.85rem;color:#444}\
        svg{display:block;max-width:100%;height:auto}footer{margin-top:1.5rem;font-size:.8rem;color:#555}
        """

    /// Views rendered for the page, pixels per side.
    public static let viewSize = 480

    /// The page. Throws when a view cannot be encoded as PNG.
    public static func make(_ content: ComparisonPDF.Content) throws(DICOMCodecError) -> String {
        var html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        html += "<title>Facet comparison report</title><style>\(style)</style></head><body><main>"
        html += "<h1>3D surface comparison</h1><p class=\"title\">\(escape(content.title))</p>"

        html += "<table aria-label=\"Patient and captures\">"
        let patient =
            "\(ComparisonPDF.displayName(content.patientName)), ID \(content.patientID), born "
            + ComparisonPDF.date(content.birthDate)
        for (label, value) in [
            ("Patient", patient),
            ("Before", "\(ComparisonPDF.date(content.before.date))   \(content.before.device)"),
            ("After", "\(ComparisonPDF.date(content.after.date))   \(content.after.device)"),
            ("Region", content.region),
        ] {
            html += "<tr><th scope=\"row\">\(label)</th><td>\(escape(value))</td></tr>"
        }
        html += "</table>"

        html += "<h2>Figures</h2><table aria-label=\"Figures\">"
        for (index, row) in ComparisonPDF.rows(content.figures).enumerated() {
            html += "<tr\(index == 0 ? " class=\"headline\"" : "")><th scope=\"row\">\(escape(row.0))</th>"
            html += "<td>\(escape(row.1))</td></tr>"
        }
        html += "</table>"

        html += "<h2>Change map</h2><div class=\"views\">"
        for (image, label) in zip(content.views.prefix(3), ["front", "left", "right"]) {
            let png = try DCMTK.encodePNG(image.rgba, width: image.width, height: image.height, samplesPerPixel: 4)
            html += "<figure><img src=\"data:image/png;base64,\(png.base64EncodedString())\" "
            html += "alt=\"Change map seen from the \(label)\" width=\"\(image.width)\" height=\"\(image.height)\">"
            html += "<figcaption>\(label)</figcaption></figure>"
        }
        html += "</div>"
        html += legend(scale: content.heatmapScaleMM)
        html += "<h2>Displacement histogram</h2>" + histogram(content.histogram)

        html += "<h2>Method</h2><p>\(escape(ComparisonPDF.method.joined(separator: " ")))</p>"
        let stamp = ISO8601DateFormatter().string(from: content.generated)
        html += "<footer>Facet \(escape(content.version)), generated \(stamp)</footer>"
        html += "</main></body></html>\n"
        return html
    }

    /// The colour scale as an SVG gradient of the map's own colours.
    static func legend(scale: Double) -> String {
        let steps = 24
        let values = (0...steps).map { -scale + 2 * scale * Double($0) / Double(steps) }
        let colors = ChangeAnalysis.heatmapColors(values, scaleMM: scale)
        var svg = "<svg viewBox=\"0 0 600 46\" width=\"600\" height=\"46\" role=\"img\" "
        svg += "aria-label=\"Colour scale from \(ComparisonPDF.signed(-scale, 1)) mm (blue, inward) to "
        svg += "\(ComparisonPDF.signed(scale, 1)) mm (red, outward)\"><defs><linearGradient id=\"scale\">"
        for (index, color) in colors.enumerated() {
            svg +=
                "<stop offset=\"\(Double(index) / Double(steps))\" stop-color=\"rgb(\(color.x),\(color.y),\(color.z))\"/>"
        }
        svg += "</linearGradient></defs><rect x=\"0\" y=\"4\" width=\"600\" height=\"14\" fill=\"url(#scale)\" "
        svg += "stroke=\"#888\" stroke-width=\"0.5\"/>"
        svg += "<text x=\"0\" y=\"36\" font-size=\"12\">\(ComparisonPDF.signed(-scale, 1)) mm (inward)</text>"
        svg += "<text x=\"300\" y=\"36\" font-size=\"12\" text-anchor=\"middle\">0</text>"
        svg += "<text x=\"600\" y=\"36\" font-size=\"12\" text-anchor=\"end\">\(ComparisonPDF.signed(scale, 1)) mm "
        svg += "(outward)</text></svg>"
        return svg + "<p>Displacement along BEFORE's normal; grey where AFTER was not found.</p>"
    }

    /// Area per displacement bin as SVG bars, over the bins that hold area.
    static func histogram(_ histogram: Histogram) -> String {
        let areas = histogram.areasMM2
        guard let first = areas.firstIndex(where: { $0 > 0 }), let last = areas.lastIndex(where: { $0 > 0 }),
            let largest = areas.max(), largest > 0, histogram.binWidthMM > 0
        else { return "<p>No area was measured.</p>" }
        let shown = Array(areas[first...last])
        let (width, height) = (600.0, 140.0)
        let bar = width / Double(shown.count)
        let low = histogram.lowerMM + Double(first) * histogram.binWidthMM
        let high = histogram.lowerMM + Double(last + 1) * histogram.binWidthMM
        var svg = "<svg viewBox=\"0 0 600 162\" width=\"600\" height=\"162\" role=\"img\" aria-label=\"Histogram of "
        svg += "displacement from \(ComparisonPDF.signed(low, 2)) to \(ComparisonPDF.signed(high, 2)) mm, "
        svg += "area per \(ComparisonPDF.plain(histogram.binWidthMM, 2)) mm bin\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"600\" height=\"140\" fill=\"none\" stroke=\"#888\" stroke-width=\"0.5\"/>"
        for (index, area) in shown.enumerated() where area > 0 {
            let center = low + (Double(index) + 0.5) * histogram.binWidthMM
            let h = height * area / largest
            let fill = center >= 0 ? "#d95a4c" : "#4c5ad9"
            func f(_ x: Double) -> String { String(format: "%.2f", x) }
            svg += "<rect x=\"\(f(Double(index) * bar))\" y=\"\(f(height - h))\" width=\"\(f(max(bar - 0.4, 0.3)))\" "
            svg += "height=\"\(f(h))\" fill=\"\(fill)\"/>"
        }
        svg += "<text x=\"0\" y=\"156\" font-size=\"12\">\(ComparisonPDF.signed(low, 2)) mm</text>"
        svg +=
            "<text x=\"600\" y=\"156\" font-size=\"12\" text-anchor=\"end\">\(ComparisonPDF.signed(high, 2)) mm</text>"
        return svg + "</svg>"
    }

    /// Text for HTML element content and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{7F}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
