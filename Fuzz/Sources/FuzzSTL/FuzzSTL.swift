// libFuzzer target for MeshKit's STL reader (see Fuzz/README.md).
import FuzzSupport
import MeshKit

/// One input: any outcome but a crash, a hang or unbounded memory is fine; errors are the expected answer.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    if let mesh = try? STLReader.read(fuzzInput(bytes, length), limits: fuzzLimits) {
        _ = MeshInfo(mesh: mesh, format: .stl)
    }
    return 0
}

/// SwiftPM links an executable's `main` to `<Module>_main`: hand control to libFuzzer's driver.
@_cdecl("FuzzSTL_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOne)
}
