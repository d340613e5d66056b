import Foundation
import Testing

@testable import MeshKit

@Suite struct ComparisonTests {
    func truthTransform(_ truth: [String: Any]) throws -> RigidTransform {
        let m = try #require(truth["after_to_before"] as? [[Double]])
        return RigidTransform(
            rotation: (
                SIMD3(m[0][0], m[0][1], m[0][2]), SIMD3(m[1][0], m[1][1], m[1][2]), SIMD3(m[2][0], m[2][1], m[2][2])
            ),
            translation: SIMD3(m[0][3], m[1][3], m[2][3]))
    }

    @Test func landmarkAlignmentRecoversAKnownTransformExactly() throws {
        let known = RigidTransform(axis: SIMD3(1, 2, 3), angle: 0.3, translation: SIMD3(10, -20, 5))
        let fixed = [SIMD3(0.0, 0, 0), SIMD3(10, 0, 0), SIMD3(0, 20, 0), SIMD3(3, 4, 15)]
        let moving = fixed.map { known.inverse.apply($0) }
        let (found, rms) = try LandmarkRegistration.align(moving: moving, fixed: fixed)
        #expect(rms < 1e-9)
        for (a, b) in zip(found.matrix.joined(), known.matrix.joined()) { #expect(abs(a - b) < 1e-9) }
        #expect(throws: MeshError.self) {
            try LandmarkRegistration.align(moving: [.zero, .zero], fixed: [.zero, .zero])
        }
    }

    @Test(arguments: ["cheek-0.9ml", "filler-2.3ml", "cheek-0.5ml"])
    func knownBumpIsRecoveredWithoutLandmarks(_ name: String) throws {
        let (before, after, truth) = try Generated.pair(name)
        var options = ChangeAnalysis.Options()
        options.region = try Region(parsing: try #require(truth["roi"] as? String))
        let report = try ChangeAnalysis.compare(before: before, after: after, options: options)
        let expected = try #require(truth["volume_change_ml"] as? Double)
        let tolerance = max(0.05, 0.03 * expected)
        #expect(abs(report.volumeChangeML - expected) <= tolerance, "\(report.volumeChangeML) vs \(expected)")
        #expect(report.registrationRMSMM <= 0.15)
        // The registration found the generator's transform.
        let known = try truthTransform(truth)
        #expect(report.transform.composed(after: known.inverse).angle < 0.002)
        #expect(length(report.transform.translation - known.translation) < 0.2)
        #expect(report.maxDisplacementMM > 0.8 * (truth["bump_height_mm"] as? Double ?? 0))
        #expect(report.positiveVolumeML > report.volumeChangeML)
    }

    @Test func landmarksAreUsedWhenGiven() throws {
        let (before, after, truth) = try Generated.pair("cheek-0.9ml")
        let marks = try #require(truth["landmarks"] as? [String: [String: [Double]]])
        func points(_ side: String) throws -> [String: SIMD3<Double>] {
            try #require(marks[side]).mapValues { SIMD3($0[0], $0[1], $0[2]) }
        }
        var options = ChangeAnalysis.Options()
        options.region = try Region(parsing: try #require(truth["roi"] as? String))
        options.landmarks = (try points("before"), try points("after"))
        let report = try ChangeAnalysis.compare(before: before, after: after, options: options)
        let expected = try #require(truth["volume_change_ml"] as? Double)
        #expect(abs(report.volumeChangeML - expected) <= max(0.05, 0.03 * expected))
    }

    @Test func identicalSurfacesShowNoChange() throws {
        let (before, _, _) = try Generated.pair("cheek-0.9ml")
        let moved = before.transformed(
            by: RigidTransform(axis: SIMD3(0, 1, 0), angle: 0.1, translation: SIMD3(5, 3, -2)))
        var options = ChangeAnalysis.Options()
        options.region = .box(minimum: SIMD3(10, -30, -100), maximum: SIMD3(50, 10, 200))
        let report = try ChangeAnalysis.compare(before: before, after: moved, options: options)
        #expect(abs(report.volumeChangeML) < 0.005)
        #expect(report.registrationRMSMM < 0.01)
        #expect(abs(report.areaChangeMM2) < 0.02 * report.roiAreaMM2)
    }

    @Test func closedMeshesAlsoReportTheEnclosedVolumeDifference() throws {
        let sphere = try Generated.read("closed/sphere-4.obj")
        var bigger = sphere
        bigger.scale(by: 1.02)
        let report = try ChangeAnalysis.compare(before: sphere, after: bigger)
        let expected = ((sphere.enclosedVolumeMM3() ?? 0) * (pow(1.02, 3) - 1)) / 1000
        #expect(abs((report.enclosedVolumeChangeML ?? 0) - expected) < 1e-6)
    }

    @Test func aVertexMaskRegionMeasuresTheSameBump() throws {
        let (before, after, truth) = try Generated.pair("cheek-0.9ml")
        let sphere = try Region(parsing: try #require(truth["roi"] as? String))
        let mask = before.positions.indices.filter { sphere.contains(before.positions[$0]) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("mask-\(UUID().uuidString).json")
        try Data(("[" + mask.map(String.init).joined(separator: ",") + "]").utf8).write(to: file)
        var options = ChangeAnalysis.Options()
        options.region = try Region(parsing: "mask:" + file.path)
        let report = try ChangeAnalysis.compare(before: before, after: after, options: options)
        let expected = try #require(truth["volume_change_ml"] as? Double)
        #expect(abs(report.volumeChangeML - expected) <= max(0.05, 0.03 * expected))
    }

    @Test func regionsParseAndContain() throws {
        #expect(try Region(parsing: "sphere:1,2,3,4").contains(SIMD3(1, 2, 6.9)))
        #expect(try !Region(parsing: "sphere:1,2,3,4").contains(SIMD3(1, 2, 7.1)))
        #expect(try Region(parsing: "box:10,0,0,0,10,10").contains(SIMD3(5, 5, 5)))
        for bad in ["sphere:1,2,3", "sphere:1,2,3,-1", "cube:1,2,3,4", "box:1,2,3,4,5,nan", "sphere"] {
            #expect(throws: MeshError.self) { try Region(parsing: bad) }
        }
    }

    @Test func heatmapScaleIsSymmetric() {
        let colors = ChangeAnalysis.heatmapColors([-2, 0, 2, 1, .nan], scaleMM: 2)
        #expect(
            colors == [
                SIMD3(0, 0, 255), SIMD3(255, 255, 255), SIMD3(255, 0, 0), SIMD3(255, 128, 128), SIMD3(128, 128, 128),
            ])
    }
}
