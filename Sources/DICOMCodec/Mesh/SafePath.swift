import Foundation

/// Resolves file references found inside a mesh (`mtllib`, `map_Kd`) against the folder of the file that names
/// them, refusing anything that would read outside that folder: absolute paths, drive letters, `..`, and
/// symbolic links that lead out.
enum SafePath {
    static func resolve(_ reference: String, in directory: URL, what: String) throws(DICOMCodecError) -> URL {
        let normalized = reference.replacingOccurrences(of: "\\", with: "/")
        guard !normalized.isEmpty else { throw DICOMCodecError(.unsafePath, "\(what) reference is empty") }
        if normalized.hasPrefix("/") || normalized.hasPrefix("~") {
            throw DICOMCodecError(
                .unsafePath, "\(what) reference is an absolute path; only files beside the mesh are read")
        }
        if normalized.count >= 2, normalized.dropFirst().first == ":", normalized.first?.isLetter == true {
            throw DICOMCodecError(
                .unsafePath, "\(what) reference is an absolute path; only files beside the mesh are read")
        }
        if normalized.contains("://") {
            throw DICOMCodecError(.unsafePath, "\(what) reference is a URL; only files beside the mesh are read")
        }
        let components = normalized.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains("..") {
            throw DICOMCodecError(
                .unsafePath, "\(what) reference leaves the mesh's folder ('..'); only files beside the mesh are read")
        }
        let base = directory.resolvingSymlinksInPath().standardizedFileURL
        let candidate = components.reduce(base) { $0.appendingPathComponent(String($1)) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue
        else {
            throw DICOMCodecError(.missingFile, "\(what) file named by the mesh does not exist beside it")
        }
        let real = candidate.resolvingSymlinksInPath().standardizedFileURL
        guard real.path.hasPrefix(base.path.hasSuffix("/") ? base.path : base.path + "/") else {
            throw DICOMCodecError(.unsafePath, "\(what) reference is a link that leads outside the mesh's folder")
        }
        return real
    }
}
