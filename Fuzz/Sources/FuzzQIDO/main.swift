// libFuzzer target for QIDO-RS query parsing and matching (DICOMCore; see Fuzz/README.md): any query string a
// client sends is parsed and matched against a few datasets.
import DICOMCore
import Foundation
import FuzzSupport

/// Datasets with the attributes QIDO matches most: names, IDs, dates, times, UIDs, a sequence.
let datasets: [Dataset] = {
    var first = Dataset()
    first.set(.patientName, .PN, "Doe^Jane^Q")
    first.set(.patientID, .LO, "P-1")
    first.set(.studyDate, .DA, "20260105")
    first.set(.studyTime, .TM, "101500.123")
    first.set(.studyInstanceUID, .UI, "1.2.3.4")
    first.set(.modality, .CS, "XC")
    first.set(.studyDescription, .LO, String(repeating: "a", count: 1024) + "b")
    var item = Dataset()
    item.set(.codeValue, .SH, "T-D1200")
    first.set(.anatomicRegionSequence, sequence: [item])
    var second = Dataset()
    second.set(.patientName, .PN, "Müller^Jürgen")
    second.set(.studyDate, .DA, "19991231")
    second.set(.studyTime, .TM, "2359")
    return [first, second, Dataset()]
}()

/// One input: a query string (`name=value&...`, percent-encoded as a URL's). Parse errors are the expected answer.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    let text = String(decoding: fuzzInput(bytes, length), as: UTF8.self)
    var items: [(name: String, value: String)] = []
    for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = parts[0].removingPercentEncoding else { return 0 }
        let value = parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
        guard let value else { return 0 }
        items.append((name, value))
    }
    guard let query = try? Query.parse(items) else { return 0 }
    for dataset in datasets { _ = Query.matches(query.keys, dataset) }
    return 0
}

/// SwiftPM links an executable's `main` to `<Module>_main`: hand control to libFuzzer's driver.
@_cdecl("FuzzQIDO_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzOne)
}
