//go:build linux

package esp

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

const rusageThread = 1 // RUSAGE_THREAD

// threadCPU returns the CPU time the calling OS thread has used; the
// benchmarks lock their goroutine to a thread and report it per operation
// (cpu-ns/op), which unlike ns/op does not count time spent waiting for a
// CPU on a shared machine.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp locks the benchmark to its thread and returns a function that
// reports cpu-ns/op after the loop.
func cpuPerOp(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU()
	return func() {
		used := threadCPU() - start
		runtime.UnlockOSThread()
		if start != 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
