import CCairo
import Foundation

/// The two watermarks of a photo that leaves the clinic (issue 12 §3).
///
/// Visible: the practice's name in a corner, drawn with cairo.
///
/// Invisible: 64 bits — the practice (16), the patient's pseudonym (24) and the export or share (24) — with a CRC-16,
/// written three times over a 20 × 12 grid of cells laid on the picture (cells scale with it). Each cell carries one
/// bit as the quantisation of its window-weighted mean brightness (QIM, step 6 grey levels): the mean is moved to
/// the nearest even or odd half-step by a smooth bump that is zero at the cell's edges (at most ±5 levels at its
/// centre, ±2 on average). A cell's mean survives what galleries and social sites do — JPEG re-encoding (quality 75
/// moves it by a fraction of a level) and downscaling (an average of averages) — so the mark is read back blind,
/// without the original, from the picture alone. Cropping or rotating moves the grid and loses it.
public enum Watermark {
    /// What the invisible mark carries.
    public struct Payload: Sendable, Equatable, CustomStringConvertible {
        /// The practice: 16 bits of FNV-1a of its name (`practiceCode(_:)`).
        public var practice: UInt16
        /// The patient's pseudonym (24 bits).
        public var pseudonym: UInt32
        /// The export's or share's number (24 bits: the first 6 hex digits of its id).
        public var mark: UInt32

        public init(practice: UInt16, pseudonym: UInt32, mark: UInt32) {
            self.practice = practice
            self.pseudonym = pseudonym & 0xFF_FFFF
            self.mark = mark & 0xFF_FFFF
        }

        public var description: String {
            "practice \(hex(UInt64(practice), 4)), patient pseudonym P\(hex(UInt64(pseudonym), 6)), "
                + "export or share \(hex(UInt64(mark), 6))"
        }

        var bits: [Bool] {
            let value = UInt64(practice) << 48 | UInt64(pseudonym) << 24 | UInt64(mark)
            let bytes = (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
            let crc = Watermark.crc16(bytes)
            return (0..<64).map { value >> (63 - $0) & 1 == 1 } + (0..<16).map { crc >> (15 - $0) & 1 == 1 }
        }

        init?(bits: [Bool]) {
            guard bits.count == 80 else { return nil }
            let value = bits.prefix(64).reduce(UInt64(0)) { $0 << 1 | ($1 ? 1 : 0) }
            let crc = bits.suffix(16).reduce(UInt16(0)) { $0 << 1 | ($1 ? 1 : 0) }
            let bytes = (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
            guard Watermark.crc16(bytes) == crc else { return nil }
            self.init(
                practice: UInt16(value >> 48), pseudonym: UInt32(value >> 24 & 0xFF_FFFF),
                mark: UInt32(value & 0xFF_FFFF))
        }
    }

    /// 16 bits naming a practice.
    public static func practiceCode(_ name: String) -> UInt16 {
        var hash: UInt32 = 0x811C_9DC5  // FNV-1a: stable across runs and machines
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return UInt16(truncatingIfNeeded: hash ^ (hash >> 16))
    }

    static let columns = 20
    static let rows = 12
    static let step = 6.0
    /// The smallest picture a mark is written into (cells of at least 8 × 8 pixels).
    public static let minimumSize = (width: 160, height: 96)

    /// Which of the 80 bits each cell carries: a fixed shuffle, so neighbouring cells (one bright background) do
    /// not hold the same bit's copies.
    static let cellBits: [Int] = {
        var order = Array(0..<(columns * rows))
        var state: UInt64 = 0x5EED_FACE
        for index in stride(from: order.count - 1, to: 0, by: -1) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            order.swapAt(index, Int(state >> 33) % (index + 1))
        }
        return order.map { $0 % 80 }
    }()

    struct Cell {
        var x0: Int, x1: Int, y0: Int, y1: Int
        /// The window over the cell, row by row.
        var weights: [Double]
        var sum: Double
        var squares: Double
    }

    static func cells(width: Int, height: Int) -> [Cell] {
        var cells: [Cell] = []
        for row in 0..<rows {
            for column in 0..<columns {
                let (x0, x1) = (column * width / columns, (column + 1) * width / columns)
                let (y0, y1) = (row * height / rows, (row + 1) * height / rows)
                var weights: [Double] = []
                weights.reserveCapacity((x1 - x0) * (y1 - y0))
                for y in y0..<y1 {
                    let v = sin(Double.pi * (Double(y - y0) + 0.5) / Double(y1 - y0))
                    for x in x0..<x1 {
                        let u = sin(Double.pi * (Double(x - x0) + 0.5) / Double(x1 - x0))
                        weights.append(u * u * v * v)
                    }
                }
                let sum = weights.reduce(0, +)
                cells.append(
                    Cell(
                        x0: x0, x1: x1, y0: y0, y1: y1, weights: weights, sum: sum,
                        squares: weights.reduce(0) { $0 + $1 * $1 }))
            }
        }
        return cells
    }

    static func mean(_ image: RGBImage, _ cell: Cell) -> Double {
        var total = 0.0
        var index = 0
        for y in cell.y0..<cell.y1 {
            var offset = (y * image.width + cell.x0) * 3
            for _ in cell.x0..<cell.x1 {
                let luma =
                    0.299 * Double(image.pixels[offset]) + 0.587 * Double(image.pixels[offset + 1]) + 0.114
                    * Double(image.pixels[offset + 2])
                total += cell.weights[index] * luma
                index += 1
                offset += 3
            }
        }
        return total / cell.sum
    }

    /// Writes the invisible mark; a picture smaller than `minimumSize` is refused.
    public static func embed(_ payload: Payload, into image: inout RGBImage) throws(DICOMCodecError) {
        guard image.width >= minimumSize.width, image.height >= minimumSize.height else {
            throw DICOMCodecError(.invalidImage, "the picture is too small to carry a watermark")
        }
        let bits = payload.bits
        for (number, cell) in cells(width: image.width, height: image.height).enumerated() {
            let offset = bits[cellBits[number]] ? step / 2 : 0
            // Up to three passes: rounding and clipping at black and white leave a remainder the next pass adds.
            for _ in 0..<3 {
                let current = mean(image, cell)
                let target = offset + step * ((current - offset) / step).rounded()
                let shift = target - current
                if abs(shift) < 0.05 { break }
                let gain = shift * cell.sum / cell.squares
                var index = 0
                for y in cell.y0..<cell.y1 {
                    var pixel = (y * image.width + cell.x0) * 3
                    for _ in cell.x0..<cell.x1 {
                        let delta = gain * cell.weights[index]
                        for channel in 0..<3 {
                            let value = Double(image.pixels[pixel + channel]) + delta
                            image.pixels[pixel + channel] = UInt8(min(255, max(0, value.rounded())))
                        }
                        index += 1
                        pixel += 3
                    }
                }
            }
        }
    }

    /// The invisible mark of a picture, nil when none is found (or it does not check).
    public static func read(_ image: RGBImage) -> Payload? {
        guard image.width >= minimumSize.width / 2, image.height >= minimumSize.height / 2 else { return nil }
        var soft = [Double](repeating: 0, count: 80)
        for (number, cell) in cells(width: image.width, height: image.height).enumerated() {
            // +1 on an even half-step (bit 0), -1 on an odd one (bit 1).
            soft[cellBits[number]] += cos(2 * Double.pi * mean(image, cell) / step)
        }
        return Payload(bits: soft.map { $0 < 0 })
    }

    /// Draws `text` in the lower right corner: white at 60 % over a dark outline, sized to the picture.
    public static func drawVisible(_ text: String, on image: inout RGBImage) {
        guard image.width > 0, image.height > 0, !text.isEmpty,
            let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(image.width), Int32(image.height))
        else { return }
        defer { cairo_surface_destroy(surface) }
        let stride = Int(cairo_image_surface_get_stride(surface))
        guard let data = cairo_image_surface_get_data(surface) else { return }
        for y in 0..<image.height {
            for x in 0..<image.width {
                let source = (y * image.width + x) * 3
                let target = y * stride + x * 4
                // RGB24: B, G, R, unused in memory on little-endian machines.
                data[target] = image.pixels[source + 2]
                data[target + 1] = image.pixels[source + 1]
                data[target + 2] = image.pixels[source]
                data[target + 3] = 255
            }
        }
        cairo_surface_mark_dirty(surface)
        let cr = cairo_create(surface)
        let size = max(12, Double(min(image.width, image.height)) / 16)
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD)
        cairo_set_font_size(cr, size)
        var extents = cairo_text_extents_t()
        cairo_text_extents(cr, text, &extents)
        let margin = size * 0.6
        let x = max(margin, Double(image.width) - extents.width - extents.x_bearing - margin)
        let y = Double(image.height) - margin - (extents.height + extents.y_bearing)
        cairo_move_to(cr, x, y)
        cairo_text_path(cr, text)
        cairo_set_source_rgba(cr, 0, 0, 0, 0.45)
        cairo_set_line_width(cr, max(1.5, size / 12))
        cairo_stroke_preserve(cr)
        cairo_set_source_rgba(cr, 1, 1, 1, 0.6)
        cairo_fill(cr)
        cairo_destroy(cr)
        cairo_surface_flush(surface)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let source = y * stride + x * 4
                let target = (y * image.width + x) * 3
                image.pixels[target] = data[source + 2]
                image.pixels[target + 1] = data[source + 1]
                image.pixels[target + 2] = data[source]
            }
        }
    }

    static func crc16(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0xFFFF  // CRC-16/CCITT-FALSE
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}

private func hex(_ value: UInt64, _ digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}
