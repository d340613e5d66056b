// Times MeshKit's readers and its comparison for Benchmarks/mesh_benchmark.py: prints one JSON line per run.
// Usage: meshkit-bench read FILE [REPEATS] | meshkit-bench info FILE | meshkit-bench compare BEFORE AFTER ROI
import Foundation
import MeshKit

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: meshkit-bench read|info|compare FILE...\n".utf8))
    exit(2)
}
do {
    switch arguments[1] {
    case "read":
        let url = URL(fileURLWithPath: arguments[2])
        let repeats = arguments.count > 3 ? Int(arguments[3]) ?? 3 : 3
        var best = Double.infinity
        var triangles = 0
        for _ in 0..<repeats {
            // Reading the bytes is part of the cost the peers pay too.
            best = min(best, try seconds { triangles = try MeshReader.read(contentsOf: url).0.triangleCount })
        }
        print("{\"seconds\":\(best),\"triangles\":\(triangles)}")
    case "info":
        let url = URL(fileURLWithPath: arguments[2])
        var info: MeshInfo?
        let time = try seconds {
            let (mesh, format) = try MeshReader.read(contentsOf: url)
            info = MeshInfo(mesh: mesh, format: format)
        }
        print("{\"seconds\":\(time),\"volume_ml\":\(info?.volumeML ?? -1),\"area_mm2\":\(info?.areaMM2 ?? -1)}")
    case "compare":
        var report: ChangeReport?
        let time = try seconds {
            let readStart = DispatchTime.now().uptimeNanoseconds
            let before = try MeshReader.read(contentsOf: URL(fileURLWithPath: arguments[2])).0
            let after = try MeshReader.read(contentsOf: URL(fileURLWithPath: arguments[3])).0
            if ProcessInfo.processInfo.environment["MESHKIT_TRACE"] != nil {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - readStart) / 1e9
                FileHandle.standardError.write(Data("read \(elapsed)\n".utf8))
            }
            var options = ChangeAnalysis.Options()
            options.region = try Region(parsing: arguments[4])
            let start = DispatchTime.now().uptimeNanoseconds
            let trace = ProcessInfo.processInfo.environment["MESHKIT_TRACE"] != nil
            report = try ChangeAnalysis.compare(before: before, after: after, options: options) { step in
                guard trace else { return }
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                FileHandle.standardError.write(Data("\(elapsed) \(step)\n".utf8))
            }
        }
        print("{\"seconds\":\(time),\"volume_change_ml\":\(report?.volumeChangeML ?? .nan)}")
    default:
        FileHandle.standardError.write(Data("unknown mode\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("meshkit-bench: \(error)\n".utf8))
    exit(1)
}
