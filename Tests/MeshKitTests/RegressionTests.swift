import Foundation
import Testing

@testable import MeshKit

/// Files that once broke MeshKit (found by the fuzzers), kept in testdata/regressions/ and named after what they
/// broke. Each must now be refused with a clear error.
@Suite struct RegressionTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata/regressions")

    @Test func plyDeclaringTheVertexElementTwiceIsRefused() throws {
        let data = try Data(contentsOf: Self.folder.appendingPathComponent("ply-duplicate-vertex-element.ply"))
        let error = #expect(throws: MeshError.self) { try PLYReader.read(data) }
        #expect(error?.message.contains("declared twice") == true)
    }
}
