import Foundation

/// The environment for an `oms` process a test starts: `base` and `extra`, plus
/// `OMS_EXIT_WITH_PARENT` (this process's id), so that it ends when the test process ends
/// without stopping it (a crash) instead of running on and loading the machine for later
/// runs.
public func omsChildEnvironment(_ extra: [String: String] = [:], base: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
    base.merging(extra) { $1 }.merging(["OMS_EXIT_WITH_PARENT": String(getpid())]) { $1 }
}

/// Whether process `pid` has ended (gone, or a zombie nobody has reaped yet).
public func processHasEnded(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // The state follows the command name, which is in parentheses and may hold spaces.
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
