// libFuzzer target for MeshKit's OBJ reader (see Fuzz/README.md).
import Foundation
import MeshKit

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// One input: any outcome but a crash, a hang or unbounded memory is fine; errors are the expected answer.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: length) } ?? Data()
    if let mesh = try? OBJReader.read(data, limits: FuzzLimits.small) { _ = MeshInfo(mesh: mesh, format: .obj) }
    return 0
}

/// SwiftPM links an executable's `main` to `<module>_main`: hand control to libFuzzer's driver.
@_cdecl("FuzzOBJ_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzOne)
}

enum FuzzLimits {
    static let small = MeshLimits(maximumFileBytes: 1 << 20, maximumVertices: 100_000, maximumTriangles: 200_000)
}
