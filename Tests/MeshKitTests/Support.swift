import Foundation
import Testing

@testable import MeshKit

/// The generated ground-truth meshes (`make test` runs testdata/generate_meshes.py first).
enum Generated {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata/generated")

    static func manifest() throws -> [String: Any] {
        let url = root.appendingPathComponent("manifest.json")
        guard let data = try? Data(contentsOf: url) else {
            Issue.record("testdata/generated is missing: run python3 testdata/generate_meshes.py (make test does)")
            throw MeshError(.empty, "no generated test data")
        }
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func read(_ path: String, unit: LengthUnit = .mm) throws -> Mesh {
        try MeshReader.read(contentsOf: root.appendingPathComponent(path), unit: unit).0
    }

    static func pair(_ name: String) throws -> (before: Mesh, after: Mesh, truth: [String: Any]) {
        let pairs = try #require(try manifest()["pairs"] as? [String: Any])
        let truth = try #require(pairs[name] as? [String: Any])
        let before = try read("pairs/" + (truth["before"] as? String ?? ""))
        let after = try read("pairs/" + (truth["after"] as? String ?? ""))
        return (before, after, truth)
    }
}

func relativeError(_ value: Double, _ truth: Double) -> Double { abs(value - truth) / abs(truth) }

func text(_ string: String) -> Data { Data(string.utf8) }
