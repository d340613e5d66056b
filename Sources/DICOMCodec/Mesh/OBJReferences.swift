import Foundation
import MeshKit

/// The file references of OBJ and MTL text: `mtllib` lines of an OBJ, texture map lines of an MTL. The exact
/// text of each reference is kept: it becomes the Relative URI in the DICOM objects.
enum OBJReferences {
    /// One referenced file and the 1-based line it was named on.
    struct Reference: Equatable {
        var uri: String
        var line: Int
    }

    /// Logical lines: CRLF and CR normalised, `\` continuations joined, comments dropped.
    static func lines(_ text: String) -> [(number: Int, text: String)] {
        var result: [(Int, String)] = []
        var pending = ""
        var startLine = 0
        var number = 0
        for raw in text.split(
            omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        {
            number += 1
            var line = String(raw)
            if pending.isEmpty { startLine = number }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line + " "
                continue
            }
            pending += line
            if let hash = pending.firstIndex(of: "#") { pending = String(pending[..<hash]) }
            let trimmed = pending.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { result.append((startLine, trimmed)) }
            pending = ""
        }
        return result
    }

    static func keywordAndRest(_ line: String) -> (String, String) {
        guard let space = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (line, "") }
        return (String(line[..<space]), line[space...].trimmingCharacters(in: .whitespaces))
    }

    /// `mtllib` references. A name with spaces is taken whole when such a file exists, otherwise split.
    static func materialLibraries(_ text: String, exists: (String) -> Bool) -> [Reference] {
        var found: [Reference] = []
        for (number, line) in lines(text) {
            let (keyword, rest) = keywordAndRest(line)
            guard keyword == "mtllib", !rest.isEmpty else { continue }
            if exists(rest) || !rest.contains(where: { $0 == " " || $0 == "\t" }) {
                found.append(Reference(uri: rest, line: number))
            } else {
                for name in rest.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    found.append(Reference(uri: String(name), line: number))
                }
            }
        }
        return found
    }

    static let textureKeywords: Set<String> = [
        "map_Kd", "map_Ka", "map_Ks", "map_Ke", "map_Ns", "map_d", "map_bump", "map_Bump", "bump", "disp", "decal",
        "norm", "map_Pr", "map_Pm", "map_Ps",
    ]

    /// Texture files named by an MTL, each once, in order of first mention.
    static func textures(_ text: String) -> [Reference] {
        var found: [Reference] = []
        for (number, line) in lines(text) {
            let (keyword, rest) = keywordAndRest(line)
            guard textureKeywords.contains(keyword) else { continue }
            let tokens = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let name = MTLReader.textureName(tokens) else { continue }
            if !found.contains(where: { $0.uri == name }) {
                found.append(Reference(uri: name, line: number))
            }
        }
        return found
    }
}
