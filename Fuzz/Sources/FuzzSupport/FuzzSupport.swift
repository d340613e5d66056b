// What the three fuzz targets share: the libFuzzer driver entry, the limits, and the input as Data.
import Foundation
import MeshKit

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Hands control to libFuzzer's driver, which calls `callback` with each input.
public func runFuzzer(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}

/// Tight bounds so that one input cannot make the fuzzer itself run out of memory.
public let fuzzLimits = MeshLimits(maximumFileBytes: 1 << 20, maximumVertices: 100_000, maximumTriangles: 200_000)

/// One fuzz input as Data.
public func fuzzInput(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Data {
    bytes.map { Data(bytes: $0, count: length) } ?? Data()
}
