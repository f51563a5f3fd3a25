@preconcurrency import Glibc

/// Makes standard output line-buffered. Called first thing in `main`, before any other
/// thread exists, which is why touching C's global `stdout` is safe here.
func lineBufferStandardOutput() {
    setvbuf(stdout, nil, _IOLBF, 0)
}
