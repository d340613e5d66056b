import Foundation

/// A forward-only scanner over ASCII mesh text (OBJ, MTL, ASCII PLY and STL): spaces and tabs separate tokens,
/// `\n`, `\r\n` or `\r` end a line, and a backslash before the line end joins two lines (OBJ continuation).
struct TextScanner {
    let base: UnsafePointer<UInt8>
    let end: Int
    var position: Int
    /// 1-based line number of `position`.
    var line = 1

    init(base: UnsafePointer<UInt8>, count: Int, position: Int = 0) {
        self.base = base
        self.end = count
        self.position = position
    }

    var atEnd: Bool { position >= end }

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0B || byte == 0x0C
    }

    /// Skips spaces, tabs and line continuations; stops at a line end or a token.
    @inline(__always) mutating func skipSpaces() {
        while position < end {
            let byte = base[position]
            if Self.isSpace(byte) {
                position += 1
            } else if byte == 0x5C, continuation() {
                continue
            } else {
                return
            }
        }
    }

    /// At a backslash: if only spaces follow before the line end, consumes through the line end.
    private mutating func continuation() -> Bool {
        var p = position + 1
        while p < end && Self.isSpace(base[p]) { p += 1 }
        guard p < end, base[p] == 0x0A || base[p] == 0x0D else { return false }
        if base[p] == 0x0D && p + 1 < end && base[p + 1] == 0x0A { p += 1 }
        position = p + 1
        line += 1
        return true
    }

    /// True at a line end, a comment, or the end of the text.
    @inline(__always) var atLineEnd: Bool {
        guard position < end else { return true }
        let byte = base[position]
        return byte == 0x0A || byte == 0x0D || byte == 0x23
    }

    /// Moves past the rest of the current line.
    mutating func nextLine() {
        while position < end {
            let byte = base[position]
            position += 1
            if byte == 0x0A {
                line += 1
                return
            }
            if byte == 0x0D {
                if position < end && base[position] == 0x0A { position += 1 }
                line += 1
                return
            }
        }
    }

    /// The next token (bytes up to a space or line end), after skipping spaces.
    mutating func token() -> Range<Int> {
        skipSpaces()
        let start = position
        while position < end {
            let byte = base[position]
            if Self.isSpace(byte) || byte == 0x0A || byte == 0x0D { break }
            position += 1
        }
        return start..<position
    }

    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(start: base + range.lowerBound, count: range.count), as: UTF8.self)
    }

    /// The rest of the line as text, trimmed (comments included: names may contain `#`).
    mutating func restOfLine() -> String {
        skipSpaces()
        let start = position
        while position < end && base[position] != 0x0A && base[position] != 0x0D { position += 1 }
        var stop = position
        while stop > start && Self.isSpace(base[stop - 1]) { stop -= 1 }
        return text(start..<stop)
    }

    @inline(__always) func matches(_ range: Range<Int>, _ word: StaticString, caseInsensitive: Bool = false) -> Bool {
        guard range.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for index in 0..<range.count {
            var a = base[range.lowerBound + index]
            var b = w[index]
            if caseInsensitive {
                if a >= 0x41 && a <= 0x5A { a += 0x20 }
                if b >= 0x41 && b <= 0x5A { b += 0x20 }
            }
            if a != b { return false }
        }
        return true
    }

    private static let powers: [Double] = (0...22).map { pow(10.0, Double($0)) }

    /// Parses a decimal number at the current position (after spaces). Exact: the fast path is Clinger's
    /// (mantissa ≤ 2^53, |exponent| ≤ 22); anything else goes to strtod. `nan` and `inf` parse to themselves so
    /// that callers can refuse them with a reason. Returns nil when no number is there.
    mutating func double() -> Double? {
        skipSpaces()
        var p = position
        guard p < end else { return nil }
        var negative = false
        if base[p] == 0x2D || base[p] == 0x2B {
            negative = base[p] == 0x2D
            p += 1
        }
        var mantissa: UInt64 = 0
        var exponent = 0
        var sawDigit = false
        var inexact = false
        while p < end, base[p] &- 0x30 < 10 {
            sawDigit = true
            if mantissa < 100_000_000_000_000_000 {
                mantissa = mantissa &* 10 &+ UInt64(base[p] &- 0x30)
            } else {
                exponent += 1
                if base[p] != 0x30 { inexact = true }
            }
            p += 1
        }
        if p < end && base[p] == 0x2E {
            p += 1
            while p < end, base[p] &- 0x30 < 10 {
                sawDigit = true
                if mantissa < 100_000_000_000_000_000 {
                    mantissa = mantissa &* 10 &+ UInt64(base[p] &- 0x30)
                    exponent -= 1
                } else if base[p] != 0x30 {
                    inexact = true
                }
                p += 1
            }
        }
        guard sawDigit else { return special(at: p, negative: negative) }
        if p < end && (base[p] == 0x65 || base[p] == 0x45) {
            var q = p + 1
            var negativeExponent = false
            if q < end && (base[q] == 0x2D || base[q] == 0x2B) {
                negativeExponent = base[q] == 0x2D
                q += 1
            }
            var value = 0
            var sawExponentDigit = false
            while q < end, base[q] &- 0x30 < 10 {
                if value < 100_000 { value = value * 10 + Int(base[q] &- 0x30) }
                sawExponentDigit = true
                q += 1
            }
            if sawExponentDigit {
                exponent += negativeExponent ? -value : value
                p = q
            }
        }
        guard
            p >= end || Self.isSpace(base[p]) || base[p] == 0x0A || base[p] == 0x0D || base[p] == 0x23
                || base[p] == 0x2F
        else { return nil }
        let start = position
        position = p
        if !inexact && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            let magnitude =
                exponent < 0 ? Double(mantissa) / Self.powers[-exponent] : Double(mantissa) * Self.powers[exponent]
            return negative ? -magnitude : magnitude
        }
        return slowDouble(start..<p)
    }

    private func slowDouble(_ range: Range<Int>) -> Double? {
        var buffer = [CChar](repeating: 0, count: min(range.count, 400) + 1)
        for index in 0..<min(range.count, 400) { buffer[index] = CChar(bitPattern: base[range.lowerBound + index]) }
        return buffer.withUnsafeBufferPointer { pointer in
            guard let address = pointer.baseAddress else { return nil }
            return strtod(address, nil)
        }
    }

    private mutating func special(at p: Int, negative: Bool) -> Double? {
        var q = p
        while q < end && (base[q] | 0x20) >= 0x61 && (base[q] | 0x20) <= 0x7A { q += 1 }
        let word = String(decoding: UnsafeBufferPointer(start: base + p, count: q - p), as: UTF8.self).lowercased()
        switch word {
        case "nan":
            position = q
            return .nan
        case "inf", "infinity":
            position = q
            return negative ? -.infinity : .infinity
        default:
            return nil
        }
    }

    /// Parses a signed decimal integer; stops before `/`.
    mutating func integer() -> Int? {
        skipSpaces()
        var p = position
        guard p < end else { return nil }
        var negative = false
        if base[p] == 0x2D || base[p] == 0x2B {
            negative = base[p] == 0x2D
            p += 1
        }
        var value = 0
        var digits = 0
        while p < end, base[p] &- 0x30 < 10 {
            if value < 1_000_000_000_000 { value = value * 10 + Int(base[p] &- 0x30) }
            digits += 1
            p += 1
        }
        guard digits > 0 else { return nil }
        position = p
        return negative ? -value : value
    }
}
