extension Matching {
    /// `*` matches any run of characters, `?` exactly one; everything else literally (Unicode scalars compared).
    ///
    /// Linear in the text: the pattern is split at `*`; the first and last segments are anchored at the ends and
    /// compared directly; each middle segment is found at its leftmost place after the previous one with a
    /// bit-parallel (shift-and) search in which `?` matches any character. Leftmost placement is correct for `*`
    /// globs: a segment placed earlier leaves more room for those after it.
    static func wildcard(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars)
        let t = Array(text.unicodeScalars)
        let segments = p.split(separator: "*", omittingEmptySubsequences: false)
        guard segments.count > 1, let first = segments.first, let last = segments.last else {
            return p.count == t.count && matches(p[...], t, at: 0)
        }
        guard t.count >= first.count + last.count, matches(first, t, at: 0),
            matches(last, t, at: t.count - last.count)
        else { return false }
        var position = first.count
        let end = t.count - last.count
        for segment in segments.dropFirst().dropLast() where !segment.isEmpty {
            guard let found = SegmentSearch(segment).leftmost(in: t, from: position, to: end) else { return false }
            position = found + segment.count
        }
        return true
    }

    /// Whether `segment` matches `text` at `offset` (`?` matches any one character).
    private static func matches(_ segment: ArraySlice<Unicode.Scalar>, _ text: [Unicode.Scalar], at offset: Int) -> Bool
    {
        guard offset >= 0, text.count - offset >= segment.count else { return false }
        var index = offset
        for character in segment {
            guard character == "?" || character == text[index] else { return false }
            index += 1
        }
        return true
    }
}

/// Shift-and search for one wildcard segment of any length (as many 64-bit words as it needs), `?` matching any
/// character: O(text × ⌈segment / 64⌉).
private struct SegmentSearch {
    let length: Int
    let words: Int
    /// Masks of ASCII characters, `words` per character.
    var ascii: [UInt64]
    /// Masks of other characters that occur in the segment.
    var other: [Unicode.Scalar: [UInt64]] = [:]
    /// Positions holding `?`: the mask of any character the segment does not name.
    var wild: [UInt64]

    init(_ segment: ArraySlice<Unicode.Scalar>) {
        length = segment.count
        words = (segment.count + 63) / 64
        wild = [UInt64](repeating: 0, count: words)
        for (position, character) in segment.enumerated() where character == "?" {
            wild[position / 64] |= 1 << UInt64(position % 64)
        }
        ascii = [UInt64](repeating: 0, count: 128 * words)
        for code in 0..<128 {
            for word in 0..<words { ascii[code * words + word] = wild[word] }
        }
        for (position, character) in segment.enumerated() where character != "?" {
            let bit: UInt64 = 1 << UInt64(position % 64)
            if character.value < 128 {
                ascii[Int(character.value) * words + position / 64] |= bit
            } else {
                var mask = other[character] ?? wild
                mask[position / 64] |= bit
                other[character] = mask
            }
        }
    }

    /// Start of the leftmost occurrence that lies entirely within `text[from..<to]`.
    func leftmost(in text: [Unicode.Scalar], from: Int, to: Int) -> Int? {
        guard length > 0, to - from >= length else { return nil }
        var state = [UInt64](repeating: 0, count: words)
        let lastWord = (length - 1) / 64
        let lastBit: UInt64 = 1 << UInt64((length - 1) % 64)
        for index in from..<to {
            let character = text[index]
            var carry: UInt64 = 1
            if character.value < 128 {
                let base = Int(character.value) * words
                for word in 0..<words {
                    let shifted = (state[word] << 1) | carry
                    carry = state[word] >> 63
                    state[word] = shifted & ascii[base + word]
                }
            } else {
                let mask = other[character] ?? wild
                for word in 0..<words {
                    let shifted = (state[word] << 1) | carry
                    carry = state[word] >> 63
                    state[word] = shifted & mask[word]
                }
            }
            if state[lastWord] & lastBit != 0 { return index - length + 1 }
        }
        return nil
    }
}
