import Foundation

/// With `OMS_EXIT_WITH_PARENT=<pid>` (the process id of the process starting it), the
/// process ends (exit status 70, no clean-up, as if killed) within half a second of that
/// process no longer being its parent, or at once if it already is not. For harnesses
/// that cannot stop a whole process tree: a test process that crashed used to leave its
/// brokers and workers running, loading the machine for every later run. The pid, not a
/// flag, because the parent may end before this process starts watching.
func exitWhenParentEndsIfAsked() {
    guard let value = ProcessInfo.processInfo.environment["OMS_EXIT_WITH_PARENT"] else { return }
    guard let parent = Int32(value), parent > 1 else {
        FileHandle.standardError.write(Data("Error: OMS_EXIT_WITH_PARENT: '\(value)' is not a process id (of the process starting oms)\n".utf8))
        exit(64)
    }
    // A thread of its own, not a task: it must run even when every task is busy.
    let watch = Thread {
        while getppid() == parent { Thread.sleep(forTimeInterval: 0.5) }
        _exit(70)
    }
    watch.start()
}
