// Times MeshKit's readers and its comparison for Benchmarks/mesh_benchmark.py: prints one JSON line per run.
// Usage: meshkit-bench read FILE [REPEATS] | meshkit-bench info FILE | meshkit-bench compare BEFORE AFTER ROI |
//        meshkit-bench render FILE SIZE (the report's three views of FILE, coloured by height, SIZE×SIZE each)
import Foundation
import MeshKit

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: meshkit-bench read|info|compare|render FILE...\n".utf8))
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
    case "render":
        let mesh = try MeshReader.read(contentsOf: URL(fileURLWithPath: arguments[2])).0
        let size = arguments.count > 3 ? Int(arguments[3]) ?? 1024 : 1024
        // A change map's colours: height about the mean, on the report's scale.
        let mean = mesh.positions.reduce(0) { $0 + $1.z } / Double(max(mesh.vertexCount, 1))
        let colors = ChangeAnalysis.heatmapColors(mesh.positions.map { $0.z - mean }, scaleMM: 20)
        var images: [SurfaceRenderer.Image] = []
        let time = seconds {
            images = SurfaceRenderer.View.allCases.map {
                SurfaceRenderer.render(mesh, colors: colors, view: $0, width: size, height: size)
            }
        }
        // Pixels that are not the white background: a blank view would show here.
        let drawn = images.reduce(0) { sum, image in
            sum
                + stride(from: 0, to: image.rgba.count, by: 4).filter { image.rgba[$0..<$0 + 3].contains { $0 != 255 } }
                .count
        }
        print(
            "{\"seconds\":\(time),\"views\":\(SurfaceRenderer.View.allCases.count),\"size\":\(size),\"covered_pixels\":\(drawn)}"
        )
    default:
        FileHandle.standardError.write(Data("unknown mode\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("meshkit-bench: \(error)\n".utf8))
    exit(1)
}
