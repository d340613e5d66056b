import Testing

@testable import DICOMCore

/// The wildcard matcher (`*`, `?`) is linear in the text and agrees with the plain definition of a glob.
@Suite struct WildcardTests {
    /// The definition, by dynamic programming over (pattern, text): slow, obviously right.
    static func reference(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars)
        let t = Array(text.unicodeScalars)
        var row = [Bool](repeating: false, count: t.count + 1)
        row[0] = true
        for character in p {
            var next = [Bool](repeating: false, count: t.count + 1)
            if character == "*" {
                var any = false
                for index in 0...t.count {
                    any = any || row[index]
                    next[index] = any
                }
            } else {
                for index in 0..<t.count where row[index] && (character == "?" || character == t[index]) {
                    next[index + 1] = true
                }
            }
            row = next
        }
        return row[t.count]
    }

    @Test func aPathologicalPatternOverALongTextFinishesWithTheRightAnswer() {
        let text = String(repeating: "a", count: 64 << 10)
        let many = String(repeating: "*a", count: 200)
        #expect(!Matching.wildcard(many + "*b", text))
        #expect(Matching.wildcard(many + "*a", text))
        #expect(Matching.wildcard(many + "*", text + "b"))
        #expect(!Matching.wildcard("*" + String(repeating: "a", count: 100) + "b*", text))
    }

    @Test func segmentsLongerThanOneWordAreFound() {
        let long = String(repeating: "ab?", count: 50)  // 150 characters: three 64-bit words
        let hit = String(repeating: "abx", count: 50)
        #expect(Matching.wildcard("*" + long + "*", "zz" + hit + "zz"))
        #expect(Matching.wildcard("*" + long, "zz" + hit))
        #expect(!Matching.wildcard("*" + long + "*", "zz" + String(hit.dropLast(2)) + "zz"))
        #expect(Matching.wildcard("*c*" + long + "*", "c" + hit + "!"))
    }

    @Test func questionMarksAndNonASCIICharactersMatchSingleCharacters() {
        #expect(Matching.wildcard("*m?ller*", "hans müller"))
        #expect(Matching.wildcard("*mü?ler", "müller"))
        #expect(!Matching.wildcard("*mü?ler", "muller"))
        #expect(Matching.wildcard("山*郎", "山田太郎"))
        #expect(Matching.wildcard("??", "éa"))
        #expect(!Matching.wildcard("?", ""))
    }

    @Test func agreesWithTheDefinitionOnEveryShortPatternAndText() {
        let alphabet: [Character] = ["a", "b", "*", "?"]
        var patterns = [""]
        for _ in 0..<5 { patterns += patterns.flatMap { p in alphabet.map { p + String($0) } } }
        let texts = ["", "a", "b", "ab", "ba", "aab", "abab", "bbba", "aaaaab", "abbaab"]
        for pattern in Set(patterns) {
            for text in texts {
                #expect(
                    Matching.wildcard(pattern, text) == Self.reference(pattern, text), "\(pattern) against \(text)")
            }
        }
    }
}
