// libFuzzer target for DICOMCore's DICOM JSON decoder (what the index reads back at start-up and what metadata
// XML is made from; see Fuzz/README.md).
import DICOMCore
import Foundation
import FuzzSupport

/// One input: a DICOM JSON document. Decoded datasets are encoded again (JSON and XML) and decoded once more: any
/// outcome but a crash, a hang or unbounded memory is fine; errors are the expected answer.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    guard let datasets = try? DICOMJSON.decodeArray(fuzzInput(bytes, length)) else { return 0 }
    for dataset in datasets {
        let json = DICOMJSON.encode(dataset)
        _ = DICOMXML.encode(dataset)
        _ = try? DICOMJSON.decode(Data(json.utf8))
    }
    return 0
}

/// SwiftPM links an executable's `main` to `<Module>_main`: hand control to libFuzzer's driver.
@_cdecl("FuzzDICOMJSON_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOne)
}
